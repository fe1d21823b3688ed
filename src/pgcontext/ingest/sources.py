"""Find input documents (files, folders, JSONL records, stdin) and read them as plain text.

Bad input never raises: it is reported as a SourceProblem and reading goes on, so one
broken file does not stop the ingestion of a thousand good ones.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import stat
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

import orjson

from pgcontext.arguments import check_text
from pgcontext.errors import ConfigError, SourceError
from pgcontext.ingest.parsing import decode_text, html_to_text, markdown_title, normalise_newlines
from pgcontext.limits import text_problem

__all__ = [
    "JsonlFields",
    "SourceDocument",
    "SourceProblem",
    "check_paths",
    "iter_documents",
    "pydoc_topics",
]

# Picked up when walking a folder; a file named explicitly is read whatever its suffix.
FOLDER_SUFFIXES = (".htm", ".html", ".json", ".jsonl", ".markdown", ".md", ".txt")
_FORMATS = {".htm": "html", ".html": "html", ".markdown": "md", ".md": "md"}
_AUTO_ID_KEYS = ("_id", "id")
_AUTO_TEXT_KEYS = ("text", "content", "body")
_EMPTY = "empty document, nothing to index"


@dataclass(frozen=True)
class PrecomputedChunk:
    """A chunk that arrives with its embedding (an export, or vectors made elsewhere)."""

    position: int
    text: str
    start: int
    end: int
    embedding: list[float]
    heading: str | None = None
    token_count: int | None = None
    model: str | None = None  # the model name or "name@revision" the record says it used


@dataclass(frozen=True)
class SourceDocument:
    """One document to chunk and embed (or, with `chunks`, to store as it comes)."""

    source: str  # unique within a collection: absolute posix path, or the JSONL record id
    title: str | None
    text: str  # plain text to be chunked, never empty or whitespace only
    metadata: dict[str, Any]  # JSON-serialisable
    chunks: tuple[PrecomputedChunk, ...] = ()
    version: int | None = None
    """Its version ticket (sql/035_document_versions.sql), taken just before it was read:
    content read later gets a newer one and wins. None: taken when handed to an ingest."""


@dataclass(frozen=True)
class SourceProblem:
    """An input that could not be read; `reason` says what to do about it."""

    source: str  # a path, or "path:LINE" for a JSONL line
    reason: str


@dataclass(frozen=True)
class JsonlFields:
    """Which JSONL/JSON record fields hold the id, title and text; None means auto-detect."""

    id: str | None = None  # auto: "_id", then "id", else "path:LINE"
    title: str | None = None  # auto: "title"
    text: str | None = None  # auto: the first present of "text", "content", "body"

    def __post_init__(self) -> None:
        for option, name in (("--id-field", self.id), ("--title-field", self.title)):
            if name is not None:
                check_text(name, option)
        if self.text is not None:
            check_text(self.text, "--text-field")


_Item = SourceDocument | SourceProblem


def iter_documents(
    paths: Iterable[str | Path],
    *,
    fields: JsonlFields = JsonlFields(),  # frozen, so one shared default is safe
    max_bytes: int = 50_000_000,
    ticket: Callable[[], int] | None = None,
) -> Iterator[SourceDocument | SourceProblem]:
    """Yield every document found under `paths`, and a SourceProblem for every bad input.

    A path is a file, a folder (walked recursively, hidden entries skipped, only
    FOLDER_SUFFIXES picked up) or ``-`` for stdin. Only regular files are read: symlinks
    are followed when they resolve, loops, dangling links, FIFOs, sockets and devices are
    reported. `-` named twice raises ConfigError at once (stdin can be read only once).
    With `ticket`, one is taken just before each file (or stdin) is opened, and every
    document read from it carries it as its version.
    """
    if isinstance(paths, str | Path):
        paths = [paths]  # a lone str is an Iterable[str] too, of its characters
    paths = list(paths)
    check_paths(paths)
    return _Reader(fields, max_bytes, ticket).read_all(paths)


def check_paths(paths: Iterable[str | Path]) -> None:
    """Refuse a list of inputs that cannot be read as given: stdin named more than once."""
    paths = list(paths)
    if any(not str(given).strip() for given in paths):
        raise ConfigError(
            "an empty path was given; name a file or folder (use . for the current directory)"
        )
    times = sum(1 for given in paths if str(given) == "-")
    if times > 1:
        raise ConfigError(
            f"stdin ('-') is named {times} times; it can be read only once: name it once"
        )


def pydoc_topics() -> Iterator[SourceDocument]:
    """The Python language reference shipped with the standard library, one document a topic."""
    from pydoc_data.topics import topics

    for topic in sorted(topics):
        text: str = topics[topic]
        if text.strip():
            yield SourceDocument(f"pydoc:{topic}", topic, text, {"topic": topic, "format": "pydoc"})


@dataclass
class _Reader:
    """State of one iter_documents call: what was seen already, to skip or flag repeats."""

    fields: JsonlFields
    max_bytes: int
    ticket: Callable[[], int] | None = None
    version: int | None = None  # the ticket of the input being read
    files_seen: set[str] = field(default_factory=set)
    ids_seen: dict[str, str] = field(default_factory=dict)  # source -> where it was first seen

    def read_all(self, paths: Iterable[str | Path]) -> Iterator[_Item]:
        for given in paths:
            if str(given) == "-":
                yield from self.read_stdin()
            else:
                try:
                    path = Path(given).expanduser()
                except RuntimeError:  # ~name of a user this system does not know
                    yield SourceProblem(str(given), "no such user for ~ in this path")
                    continue
                yield from self.read_path(path)

    def read_stdin(self) -> Iterator[_Item]:
        if sys.stdin is None:  # Python's stdin when file descriptor 0 is closed
            yield SourceProblem("stdin", "standard input is closed; pipe the text in with -")
            return
        self._take_ticket()
        buffer = getattr(sys.stdin, "buffer", None)
        try:
            data: bytes = (
                buffer.read(self.max_bytes + 1)
                if buffer is not None
                else sys.stdin.read(self.max_bytes + 1).encode()
            )
        except OSError as exc:
            yield SourceProblem("stdin", _os_reason(exc))
            return
        if len(data) > self.max_bytes:
            yield SourceProblem("stdin", _too_big(len(data), self.max_bytes, "at least "))
            return
        try:
            text = decode_text(data, "stdin")
        except SourceError as exc:
            yield SourceProblem("stdin", exc.reason)
            return
        if not text.strip():
            yield SourceProblem("stdin", "empty input, nothing to index")
        elif text.lstrip().startswith("{"):
            yield from self._jsonl(text, "stdin")
        else:
            yield self._register(SourceDocument("stdin", None, text, {"format": "txt"}), "stdin")

    def read_path(self, path: Path) -> Iterator[_Item]:
        found = _follow(path.absolute())
        if isinstance(found, SourceProblem):
            yield found
            return
        real, mode = found
        if stat.S_ISDIR(mode):
            yield from self._read_folder(real)
        else:
            yield from self._read_file(real)

    def _read_folder(self, folder: Path) -> Iterator[_Item]:
        found = False
        for item in _walk(folder):
            found = True  # a problem already says why a file was not read
            if isinstance(item, SourceProblem):
                yield item
            else:
                yield from self._read_file(item)
        if not found:
            reason = (
                f"no supported files ({' '.join(FOLDER_SUFFIXES)}) in this directory; "
                "name other files explicitly to read them as plain text"
            )
            yield SourceProblem(folder.as_posix(), reason)

    def _read_file(self, path: Path) -> Iterator[_Item]:
        source = path.as_posix()
        if source in self.files_seen:
            return  # named twice, or both itself and through its folder
        self.files_seen.add(source)
        self._take_ticket()
        if path.suffix.lower() == ".jsonl":
            yield from self._jsonl_file(path)
            return
        data = _read_bytes(path, self.max_bytes)
        if isinstance(data, SourceProblem):
            yield data
            return
        try:
            text = decode_text(data, source)
        except SourceError as exc:
            yield SourceProblem(source, exc.reason)
            return
        suffix = path.suffix.lower()
        if suffix == ".jsonl":
            yield from self._jsonl(text, source)
        elif suffix == ".json":
            yield from self._json(text, source)
        else:
            yield self._register(_file_document(path, text, _FORMATS.get(suffix, "txt")), source)

    def _jsonl_file(self, path: Path) -> Iterator[_Item]:
        """A JSONL file streamed line by line: any size, each line checked on its own."""
        source = path.as_posix()
        try:
            with _open_regular(path) as file:
                yield from self._records(self._decoded_lines(file, source), source)
        except OSError as exc:
            yield SourceProblem(source, _os_reason(exc))

    def _decoded_lines(self, file: IO[bytes], source: str) -> Iterator[tuple[int, str] | _Item]:
        number = 0
        while True:
            # Bounded: a line over the limit is never held whole (a sparse 20 GB file).
            raw = file.readline(self.max_bytes + 1)  # binary mode: lines end at b"\n" only
            if not raw:
                return
            number += 1
            where = f"{source}:{number}"
            if len(raw) > self.max_bytes:
                if number == 1 and b"\x00" in raw:  # binary or UTF-16: a problem for the file
                    try:
                        decode_text(raw, source)
                    except SourceError as exc:
                        yield SourceProblem(source, exc.reason)
                        return
                length = len(raw) if raw.endswith(b"\n") else len(raw) + _skip_line(file)
                yield SourceProblem(where, f"line {number}: {_too_big(length, self.max_bytes)}")
                continue
            try:
                yield number, decode_text(raw.removesuffix(b"\n"), where)
            except SourceError as exc:
                if number == 1:  # a binary or UTF-16 file: one problem for the whole file
                    yield SourceProblem(source, exc.reason)
                    return
                yield SourceProblem(where, f"line {number}: {exc.reason}")

    def _jsonl(self, text: str, origin: str) -> Iterator[_Item]:
        # split("\n"), not splitlines(): U+2028 and friends may sit unescaped in JSON strings.
        yield from self._records(enumerate(text.split("\n"), start=1), origin)

    def _records(self, lines: Iterable[tuple[int, str] | _Item], origin: str) -> Iterator[_Item]:
        records = 0
        for entry in lines:
            if not isinstance(entry, tuple):
                records += 1
                yield entry
                continue
            number, line = entry
            if not line.strip():
                continue
            records += 1
            where = f"{origin}:{number}"
            try:
                value = _loads(line)
            except (ValueError, RecursionError) as exc:
                yield SourceProblem(
                    where, f"line {number}: invalid JSON: {_json_error(exc, one_line=True)}"
                )
                continue
            yield self._register(_record_document(value, self.fields, where), where)
        if not records:
            yield SourceProblem(origin, "empty file, no records to index")

    def _json(self, text: str, origin: str) -> Iterator[_Item]:
        try:
            value = _loads(text)
        except (ValueError, RecursionError) as exc:
            # Valid syntax with a refused number: in an array, only its record fails.
            value = None if isinstance(exc, json.JSONDecodeError) else _marked_array(text)
            if value is None:
                yield SourceProblem(origin, f"invalid JSON: {_json_error(exc)}")
                return
        if isinstance(value, dict):
            yield self._register(_record_document(value, self.fields, origin), origin)
        elif isinstance(value, list) and value:
            for index, record in enumerate(value):
                where = f"{origin}[{index}]"
                refused = _first_refused(record)
                if refused is not None:
                    yield SourceProblem(where, f"invalid JSON: {refused.reason}")
                    continue
                yield self._register(_record_document(record, self.fields, where), where)
        elif isinstance(value, list):
            yield SourceProblem(origin, "empty array, no records to index")
        else:
            reason = f"holds a JSON {_json_type(value)}; expected an object or an array of objects"
            yield SourceProblem(origin, reason)

    def _take_ticket(self) -> None:
        # One per file, before it is opened: all its records are as new as the file's
        # oldest byte at worst (a write of content read later always wins).
        if self.ticket is not None:
            self.version = self.ticket()

    def _register(self, item: _Item, where: str) -> _Item:
        """Pass a document through, with the ticket of its input, unless its source was
        yielded before in this call."""
        if isinstance(item, SourceProblem):
            return item
        if self.version is not None and not item.chunks:  # imports take their own
            item = replace(item, version=self.version)
        # Chunks with embeddings share their document's source: each position is one record.
        key = f"{item.source}#{item.chunks[0].position}" if item.chunks else item.source
        first = self.ids_seen.setdefault(key, where)
        if first != where:
            reason = f"duplicate id {item.source!r}, first used at {first}; ids must be unique"
            return SourceProblem(where, reason)
        return item


def _walk(folder: Path) -> Iterator[Path | SourceProblem]:
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
        found = _follow(path)
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
        return SourceProblem(folder.as_posix(), _os_reason(exc))
    stack.append(iter(entries))
    return None


def _follow(path: Path) -> tuple[Path, int] | SourceProblem:
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
        return SourceProblem(path.as_posix(), _not_regular(mode))
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
    return _os_reason(exc)


_SPECIAL_FILES = (
    (stat.S_ISFIFO, "FIFO"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
)


def _not_regular(mode: int) -> str:
    kind = next((name for test, name in _SPECIAL_FILES if test(mode)), "special file")
    return f"not a regular file ({kind}); to read a stream, pipe it to stdin with -"


class _NotRegularError(OSError):
    """A path that turned into a FIFO, socket or device between its stat and its open."""


def _open_regular(path: Path) -> IO[bytes]:
    """Open a regular file for reading; anything else is refused without blocking."""
    # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _NotRegularError(errno.EINVAL, _not_regular(mode))
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _read_bytes(path: Path, max_bytes: int) -> bytes | SourceProblem:
    source = path.as_posix()
    try:
        with _open_regular(path) as file:
            size = os.fstat(file.fileno()).st_size
            data = file.read(max_bytes + 1) if size <= max_bytes else b""
    except OSError as exc:
        return SourceProblem(source, _os_reason(exc))
    if size > max_bytes:
        return SourceProblem(source, _too_big(size, max_bytes))
    if len(data) > max_bytes:  # the file grew since its size was read
        return SourceProblem(source, _too_big(len(data), max_bytes, "at least "))
    return data


def _skip_line(file: IO[bytes], chunk: int = 1 << 20) -> int:
    """Read past the rest of the current line, a chunk at a time; the bytes skipped."""
    skipped = 0
    while True:
        part = file.readline(chunk)
        skipped += len(part)
        if not part or part.endswith(b"\n"):
            return skipped


def _too_big(size: int, max_bytes: int, qualifier: str = "") -> str:
    return (
        f"file is {qualifier}{size} bytes, over the limit of {max_bytes}; "
        "split it or raise --max-bytes"
    )


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, _NotRegularError):
        return str(exc.strerror)
    if isinstance(exc, FileNotFoundError):
        return "no such file or directory"
    if isinstance(exc, PermissionError):
        return "permission denied; check the file's permissions or run as its owner"
    return f"cannot read: {exc.strerror or exc}"


def _file_document(path: Path, text: str, format_: str) -> SourceDocument | SourceProblem:
    source = path.as_posix()
    title: str | None = path.stem
    if format_ == "html":
        html_title, text = html_to_text(text)
        title = html_title or path.stem
    elif format_ == "md":
        title = markdown_title(text) or path.stem
    if not text.strip():
        return SourceProblem(source, _EMPTY)
    return SourceDocument(source, title, text, {"path": source, "format": format_})


def _loads(text: str) -> Any:
    """Parse JSON: integers exact, NaN and numbers beyond a double (1e400) refused.

    orjson is several times faster (it matters for lines of embeddings), but it turns
    integers beyond 64 bits into floats: a text holding such a long integer, and any text
    orjson refuses (for a clearer message), goes to the standard parser.
    """
    if _LONG_INTEGER.search(text) is None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(
        text, parse_constant=_reject_constant, parse_float=_finite_float, parse_int=_exact_int
    )


# 19 digits or more, not part of a decimal fraction or exponent: maybe beyond 64 bits.
_LONG_INTEGER = re.compile(r"(?<![\d.])\d{19,}(?![\d.eE])")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if math.isinf(value):
        raise ValueError(
            f"number {literal} is too large for a double (it would be Infinity); "
            "write it as a string"
        )
    return value


def _exact_int(literal: str) -> int:
    try:
        return int(literal)
    except ValueError:  # beyond Python's limit on digits converted (4300)
        raise ValueError(f"an integer of {len(literal.lstrip('-'))} digits is too long") from None


@dataclass(frozen=True)
class _Refused:
    """A number `_loads` refuses, kept in place so that only its record fails."""

    reason: str


def _marked_array(text: str) -> list[Any] | None:
    """The JSON array in `text` with each refused number a _Refused; None if no array."""

    def mark(parse: Any) -> Any:  # a parse_* hook of json.loads
        def parse_or_mark(literal: str) -> Any:
            try:
                return parse(literal)
            except ValueError as exc:
                return _Refused(str(exc))

        return parse_or_mark

    try:
        value = json.loads(
            text,
            parse_constant=mark(_reject_constant),
            parse_float=mark(_finite_float),
            parse_int=mark(_exact_int),
        )
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, list) else None


def _first_refused(value: Any) -> _Refused | None:
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, _Refused):
            return item
        if isinstance(item, dict):
            pending.extend(reversed(item.values()))
        elif isinstance(item, list):
            pending.extend(reversed(item))
    return None


def _json_error(exc: ValueError | RecursionError, *, one_line: bool = False) -> str:
    if isinstance(exc, json.JSONDecodeError):
        where = f"column {exc.colno}" if one_line else f"line {exc.lineno} column {exc.colno}"
        return f"{exc.msg} ({where})"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc)


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def _record_document(
    record: Any, fields: JsonlFields, where: str
) -> SourceDocument | SourceProblem:
    """Turn one JSON record into a document; `where` is its location, the fallback id."""
    if not isinstance(record, dict):
        return SourceProblem(where, f"record is a JSON {_json_type(record)}, not an object")
    if "embedding" in record:
        return _embedded_record(record, fields, where)
    id_key = _id_key(record, fields.id)
    source = where if id_key is None else _as_id(record.get(id_key))
    if source is None:
        reason = (
            f"id field {id_key!r} is missing, empty or not a string or number; "
            "name another with --id-field"
        )
        return SourceProblem(where, reason)
    text_key = _text_key(record, fields.text)
    if text_key is None:
        looked_for = fields.text or ", ".join(_AUTO_TEXT_KEYS)
        return SourceProblem(
            where, f"no text field: looked for {looked_for}; name one with --text-field"
        )
    text = record[text_key]
    if not isinstance(text, str):
        return SourceProblem(
            where, f"text field {text_key!r} is a JSON {_json_type(text)}, not a string"
        )
    if not text.strip():
        return SourceProblem(where, _EMPTY)
    title_key = fields.title or "title"
    title = _as_title(record.get(title_key))
    used = {key for key in (id_key, text_key, title_key) if key is not None}
    metadata = _record_metadata(record, used)
    return SourceDocument(source, title, _with_title(title, normalise_newlines(text)), metadata)


def _id_key(record: dict[str, Any], named: str | None) -> str | None:
    """The field holding the record id; None when there is none and the location is used."""
    return named or next((key for key in _AUTO_ID_KEYS if key in record), None)


def _as_id(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _text_key(record: dict[str, Any], named: str | None) -> str | None:
    candidates = (named,) if named else _AUTO_TEXT_KEYS
    return next((key for key in candidates if key in record), None)


def _as_title(value: Any) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _with_title(title: str | None, text: str) -> str:
    # The title is put in the text so that it is embedded and searchable with the body.
    if title is None or text.lstrip().startswith(title):
        return text
    return f"{title}\n\n{text}"


def _record_metadata(record: dict[str, Any], used: set[str]) -> dict[str, Any]:
    """The record's other fields; a nested "metadata" object is merged, top-level keys win."""
    rest = {key: value for key, value in record.items() if key not in used}
    nested = rest.get("metadata")
    if isinstance(nested, dict):
        del rest["metadata"]
        return {**nested, **rest}
    return rest


def _embedded_record(
    record: dict[str, Any], fields: JsonlFields, where: str
) -> SourceDocument | SourceProblem:
    """A record with its own `embedding`: one chunk, stored as is (no chunking, no model).

    `pgcontext export` writes these (with `document`, `position`, `span`, `heading`,
    `token_count`, `model`); a record of another program needs only an id, a text and the
    embedding, and becomes a one-chunk document.
    """
    vector = record["embedding"]
    if (
        not isinstance(vector, list)
        or not vector
        or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in vector)
    ):
        return SourceProblem(where, "embedding is not a non-empty list of numbers")
    if "document" in record:
        source = _as_id(record["document"])
    else:
        id_key = _id_key(record, fields.id)
        source = where if id_key is None else _as_id(record.get(id_key))
    text_key = _text_key(record, fields.text)
    text = record.get(text_key) if text_key else None
    if source is None or not isinstance(text, str) or not text.strip():
        return SourceProblem(where, "a record with an embedding needs an id and a non-empty text")
    position = record.get("position", 0)
    span = record.get("span") or [0, len(text)]
    if not isinstance(position, int) or position < 0 or not _is_span(span, len(text)):
        return SourceProblem(where, "position must be a whole number >= 0 and span [start, end]")
    known = {
        "document",
        "chunk_id",
        "position",
        "span",
        "heading",
        "token_count",
        "model",
        "embedding",
        "title",
        "metadata",
        fields.id or "_id",
        "id",
        text_key,
    }
    nested = record.get("metadata")
    metadata = (
        nested if isinstance(nested, dict) else {k: v for k, v in record.items() if k not in known}
    )
    chunk = PrecomputedChunk(
        position=position,
        text=text,
        start=span[0],
        end=span[1],
        embedding=vector,
        heading=record.get("heading") if isinstance(record.get("heading"), str) else None,
        token_count=record.get("token_count")
        if isinstance(record.get("token_count"), int)
        else None,
        model=_model_label(record.get("model")),
    )
    return SourceDocument(source, _as_title(record.get("title")), text, metadata, (chunk,))


def _is_span(span: Any, length: int) -> bool:
    return (
        isinstance(span, list)
        and len(span) == 2
        and all(isinstance(x, int) for x in span)
        and 0 <= span[0] <= span[1]
        and span[1] - span[0] == length
    )


def _model_label(model: Any) -> str | None:
    if isinstance(model, str):
        return model
    if isinstance(model, dict) and isinstance(model.get("name"), str):
        revision = model.get("revision")
        return f"{model['name']}@{revision}" if isinstance(revision, str) else model["name"]
    return None
