"""Where an export goes: a file written whole or not at all, or a stream written through.

What is written is the exchange format (ingest.exchange); this module only decides how.
A file is written next to its target (through symbolic links) under a temporary name and
renamed onto it only when complete, so a failed export leaves no file (or the previous one);
a stream (or a FIFO or device named as the output) cannot be taken back, so a failure there
says that the output is incomplete.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import IO

from pgcontext.errors import ExportError

Write = Callable[[IO[bytes]], int]
"""Writes the export to an open binary file; returns how many chunks."""

_MAX_LINKS = 40  # as Linux's own limit on following symbolic links
_DESCRIPTOR_FOLDER = re.compile(r"/proc/[^/]+/fd")


def export_to_file(path: Path, write: Write) -> int:
    """Write the export to the file `path` names; returns the number of chunks.

    A regular file (new, or the one a chain of symbolic links ends at) is written whole or
    not at all, keeping an existing file's mode (and owner, as root) and the links to it.
    Anything else that exists (a FIFO, a device, /dev/stdout) is written through as a
    stream: not atomic, so a failure there says that what it received is incomplete.
    """
    target = _final_target(path)
    if target is None:
        return _export_to_stream(path, write)
    try:
        status: os.stat_result | None = os.lstat(target)
    except FileNotFoundError:
        status = None
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from exc
    if status is not None and stat.S_ISDIR(status.st_mode):
        raise ExportError(f"cannot write {path}: it is a directory; name a file in it")
    if status is not None and not stat.S_ISREG(status.st_mode):
        return _export_to_stream(target, write)
    return _export_atomically(path, target, status, write)


def _final_target(path: Path) -> Path | None:
    """The path a chain of symbolic links from `path` ends at (existing or not).

    None when a link is an open file descriptor's (/dev/stdout, /dev/fd/N, /proc/N/fd/N):
    renaming onto it cannot reach what it is open on, so it is written as a stream.
    """
    current = path
    for _ in range(_MAX_LINKS):
        if _DESCRIPTOR_FOLDER.fullmatch(os.path.realpath(current.parent)):
            return None
        try:
            link = os.readlink(current)
        except FileNotFoundError:
            return current
        except OSError as exc:
            if exc.errno == errno.EINVAL:  # not a link: the end of the chain
                return current
            raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from exc
        current = current.parent / link
    raise ExportError(
        f"cannot write {path}: too many levels of symbolic links (a loop?); name the file"
    )


def _export_to_stream(path: Path, write: Write) -> int:
    """Write through an existing FIFO or device (a FIFO waits for its reader)."""
    try:
        # O_APPEND: a descriptor's file opened by the shell with >> keeps what it had.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as out:
            return write(out)
    except OSError as exc:
        raise ExportError(
            f"cannot write {path}: {exc.strerror or exc}; it is not a regular file, so it "
            "was written directly (not atomically): what it received is incomplete"
        ) from exc


def _export_atomically(
    path: Path, target: Path, existing: os.stat_result | None, write: Write
) -> int:
    # A short name of our own: a valid long target name must not make it too long.
    temporary = target.with_name(f".pgcontext-export-{secrets.token_hex(4)}.tmp")
    try:
        # O_EXCL: never through someone else's file; mode 0o666 lets the umask decide.
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as out:
            if existing is not None:
                _keep_mode_and_owner(out.fileno(), existing)
            count = write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
    except BaseException as exc:
        temporary.unlink(missing_ok=True)
        if isinstance(exc, ExportError):
            # write_export's "incomplete export" is about a stream kept; this file is gone.
            reason = exc.__cause__ if isinstance(exc.__cause__, ExportError) else exc
            raise ExportError(f"{reason}; nothing was written to {path}") from exc
        if isinstance(exc, OSError):
            raise ExportError(
                f"cannot write {path}: {exc.strerror or exc}; nothing was written"
            ) from exc
        raise
    _sync_directory(target.parent)
    return count


def _keep_mode_and_owner(fd: int, existing: os.stat_result) -> None:
    """The replacement gets the replaced file's owner (only root can give it) and mode."""
    if os.geteuid() == 0:
        os.fchown(fd, existing.st_uid, existing.st_gid)
    os.fchmod(fd, stat.S_IMODE(existing.st_mode))  # after chown, which clears set-id bits


def _sync_directory(folder: Path) -> None:
    """Make the rename itself durable; some file systems cannot, which is no error."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
