"""Files and folders as ingest finds them: the walk, what is refused, reading bytes.

Only regular files are read; links are followed when they resolve, and nothing is opened
that could block (a FIFO) or is not a file. Each refusal is a SourceProblem saying why.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from pgcontext.ingest.documents import SourceDocument, SourceProblem
from pgcontext.ingest.parsing import html_to_text, markdown_title
from pgcontext.limits import text_problem

# Picked up when walking a folder; a file named explicitly is read whatever its suffix.
FOLDER_SUFFIXES = (".htm", ".html", ".json", ".jsonl", ".markdown", ".md", ".txt")
EMPTY = "empty document, nothing to index"


def walk(folder: Path) -> Iterator[Path | SourceProblem]:
    """Supported files under `folder`, sorted by name, hidden entries skipped.

    Symlinked folders are not followed (a link to a parent would loop forever); a
    symlinked file is read when its link resolves to a regular file. The walk keeps its
    own stack, so a folder nested thousands of levels deep is no recursion error.
    """
    stack: list[Iterator[os.DirEntry[str]]] = []
    problem = _push_folder(stack, folder)
    if problem is not None:
        yield problem
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        if entry.name.startswith("."):
            continue
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            problem = _push_folder(stack, path)
            if problem is not None:
                yield problem
            continue
        if path.suffix.lower() not in FOLDER_SUFFIXES:
            continue
        found = follow(path)
        if isinstance(found, SourceProblem):
            yield found
        elif not stat.S_ISDIR(found[1]):  # a symlinked folder: not followed
            yield path


def _push_folder(stack: list[Iterator[os.DirEntry[str]]], folder: Path) -> SourceProblem | None:
    """Put `folder`'s entries, sorted by name, on top of the walk's stack."""
    try:
        with os.scandir(folder) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
    except OSError as exc:
        return SourceProblem(folder.as_posix(), os_reason(exc))
    stack.append(iter(entries))
    return None


def follow(path: Path) -> tuple[Path, int] | SourceProblem:
    """The real path and st_mode of a folder or regular file `path` names; else a problem.

    Only lstat and stat are used: nothing is opened, so a FIFO cannot block the run.
    """
    problem = text_problem(path.as_posix(), fix="rename it to UTF-8")
    if problem is not None:  # a byte that is not UTF-8, as a lone surrogate (PEP 383)
        shown = os.fsencode(path).decode("utf-8", "backslashreplace")
        return SourceProblem(shown, f"file name {problem}")
    try:
        mode = path.stat().st_mode  # follows symlinks
    except OSError as exc:
        return SourceProblem(_shown(path), _unfollowable(path, exc))
    # Before resolving: /dev/fd/N of a pipe is a link to "pipe:[N]", which resolves nowhere.
    if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
        return SourceProblem(path.as_posix(), not_regular(mode))
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop, on Python 3.11
        return SourceProblem(_shown(path), _unfollowable(path, exc))
    return real, mode


def _shown(path: Path) -> str:
    """Where a problem is: the link itself when a symlink is to blame, else the real path."""
    if path.is_symlink():
        return path.as_posix()
    try:
        return Path(os.path.realpath(path)).as_posix()
    except (OSError, RuntimeError, ValueError):
        return path.as_posix()


def _unfollowable(path: Path, exc: BaseException) -> str:
    loop = "symlink loop: the link leads back to itself; fix or remove it"
    if isinstance(exc, RuntimeError) or getattr(exc, "errno", None) == errno.ELOOP:
        return loop
    if isinstance(exc, FileNotFoundError) and path.is_symlink():
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        return f"dangling symlink -> {target}: the target does not exist; fix or remove the link"
    assert isinstance(exc, OSError)
    return os_reason(exc)


_SPECIAL_FILES = (
    (stat.S_ISFIFO, "FIFO"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
)


def not_regular(mode: int) -> str:
    kind = next((name for test, name in _SPECIAL_FILES if test(mode)), "special file")
    return f"not a regular file ({kind}); to read a stream, pipe it to stdin with -"


class _NotRegularError(OSError):
    """A path that turned into a FIFO, socket or device between its stat and its open."""


def open_regular(path: Path) -> IO[bytes]:
    """Open a regular file for reading; anything else is refused without blocking."""
    # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _NotRegularError(errno.EINVAL, not_regular(mode))
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path: Path, max_bytes: int) -> bytes | SourceProblem:
    source = path.as_posix()
    try:
        with open_regular(path) as file:
            size = os.fstat(file.fileno()).st_size
            data = file.read(max_bytes + 1) if size <= max_bytes else b""
    except OSError as exc:
        return SourceProblem(source, os_reason(exc))
    if size > max_bytes:
        return too_big(source, size, max_bytes)
    if len(data) > max_bytes:  # the file grew since its size was read
        return too_big(source, len(data), max_bytes, "at least ")
    return data


def skip_line(file: IO[bytes], chunk: int = 1 << 20) -> int:
    """Read past the rest of the current line, a chunk at a time; the bytes skipped."""
    skipped = 0
    while True:
        part = file.readline(chunk)
        skipped += len(part)
        if not part or part.endswith(b"\n"):
            return skipped


def too_big(
    where: str, size: int, max_bytes: int, qualifier: str = "", *, line: int | None = None
) -> SourceProblem:
    """An input over `max_bytes` (the ingest parameter): split it or raise that."""
    reason = (
        f"file is {qualifier}{size} bytes, over the limit of {max_bytes}; "
        "split it or raise max_bytes"
    )
    if line is not None:
        reason = f"line {line}: {reason}"
    return SourceProblem(where, reason, parameter="max_bytes")


def is_folder(mode: int) -> bool:
    return stat.S_ISDIR(mode)


def os_reason(exc: OSError) -> str:
    if isinstance(exc, _NotRegularError):
        return str(exc.strerror)
    if isinstance(exc, FileNotFoundError):
        return "no such file or directory"
    if isinstance(exc, PermissionError):
        return "permission denied; check the file's permissions or run as its owner"
    return f"cannot read: {exc.strerror or exc}"


def file_document(path: Path, text: str, format_: str) -> SourceDocument | SourceProblem:
    source = path.as_posix()
    title: str | None = path.stem
    if format_ == "html":
        html_title, text = html_to_text(text)
        title = html_title or path.stem
    elif format_ == "md":
        title = markdown_title(text) or path.stem
    if not text.strip():
        return SourceProblem(source, EMPTY)
    return SourceDocument(source, title, text, {"path": source, "format": format_})
