"""Find input documents (files, folders, JSONL records, stdin) and read them as plain text.

Bad input never raises: it is reported as a SourceProblem and reading goes on, so one
broken file does not stop the ingestion of a thousand good ones. Files are found and read
by ingest.files, records parsed by ingest.records; this module walks the inputs in order.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO

from pgcontext.errors import ConfigError, SourceError
from pgcontext.ingest import files, records
from pgcontext.ingest.documents import JsonlFields, PrecomputedChunk, SourceDocument, SourceProblem
from pgcontext.ingest.parsing import decode_text
from pgcontext.limits import DEFAULT_MAX_BYTES

__all__ = [
    "JsonlFields",
    "PrecomputedChunk",
    "SourceDocument",
    "SourceProblem",
    "check_paths",
    "iter_documents",
    "pydoc_topics",
]

_FORMATS = {".htm": "html", ".html": "html", ".markdown": "md", ".md": "md"}


_Item = SourceDocument | SourceProblem


def iter_documents(
    paths: Iterable[str | Path],
    *,
    fields: JsonlFields | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
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
    return _Reader(fields or JsonlFields(), max_bytes, ticket).read_all(paths)


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
            yield SourceProblem("stdin", files.os_reason(exc))
            return
        if len(data) > self.max_bytes:
            yield files.too_big("stdin", len(data), self.max_bytes, "at least ")
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
        found = files.follow(path.absolute())
        if isinstance(found, SourceProblem):
            yield found
            return
        real, mode = found
        if files.is_folder(mode):
            yield from self._read_folder(real)
        else:
            yield from self._read_file(real)

    def _read_folder(self, folder: Path) -> Iterator[_Item]:
        found = False
        for item in files.walk(folder):
            found = True  # a problem already says why a file was not read
            if isinstance(item, SourceProblem):
                yield item
            else:
                yield from self._read_file(item)
        if not found:
            reason = (
                f"no supported files ({' '.join(files.FOLDER_SUFFIXES)}) in this directory; "
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
        data = files.read_bytes(path, self.max_bytes)
        if isinstance(data, SourceProblem):
            yield data
            return
        try:
            text = decode_text(data, source)
        except SourceError as exc:
            yield SourceProblem(source, exc.reason)
            return
        suffix = path.suffix.lower()
        if suffix == ".json":
            yield from self._json(text, source)
        else:
            yield self._register(
                files.file_document(path, text, _FORMATS.get(suffix, "txt")), source
            )

    def _jsonl_file(self, path: Path) -> Iterator[_Item]:
        """A JSONL file streamed line by line: any size, each line checked on its own."""
        source = path.as_posix()
        try:
            with files.open_regular(path) as file:
                yield from self._records(self._decoded_lines(file, source), source)
        except OSError as exc:
            yield SourceProblem(source, files.os_reason(exc))

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
                length = len(raw) if raw.endswith(b"\n") else len(raw) + files.skip_line(file)
                yield files.too_big(where, length, self.max_bytes, line=number)
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
        found = 0
        for entry in lines:
            if not isinstance(entry, tuple):
                found += 1
                yield entry
                continue
            number, line = entry
            if not line.strip():
                continue
            found += 1
            where = f"{origin}:{number}"
            try:
                value = records.loads(line)
            except (ValueError, RecursionError) as exc:
                reason = records.json_error(exc, one_line=True)
                yield SourceProblem(where, f"line {number}: invalid JSON: {reason}")
                continue
            yield self._register(records.record_document(value, self.fields, where), where)
        if not found:
            yield SourceProblem(origin, "empty file, no records to index")

    def _json(self, text: str, origin: str) -> Iterator[_Item]:
        try:
            value = records.loads(text)
        except (ValueError, RecursionError) as exc:
            # Valid syntax with a refused number: in an array, only its record fails.
            value = None if records.is_syntax_error(exc) else records.marked_array(text)
            if value is None:
                yield SourceProblem(origin, f"invalid JSON: {records.json_error(exc)}")
                return
        if isinstance(value, dict):
            yield self._register(records.record_document(value, self.fields, origin), origin)
        elif isinstance(value, list) and value:
            for index, record in enumerate(value):
                where = f"{origin}[{index}]"
                refused = records.first_refused(record)
                if refused is not None:
                    yield SourceProblem(where, f"invalid JSON: {refused.reason}")
                    continue
                yield self._register(records.record_document(record, self.fields, where), where)
        elif isinstance(value, list):
            yield SourceProblem(origin, "empty array, no records to index")
        else:
            kind = records.json_type(value)
            reason = f"holds a JSON {kind}; expected an object or an array of objects"
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
