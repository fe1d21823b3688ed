"""`pgcontext export`: a collection's chunks as JSONL, the exact input of an import.

Each line is one chunk with its embedding and everything needed to rebuild the document
and to check the model on the way in: ingesting the file into another database restores
the collection without running the model.

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
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson
import psycopg

from pgcontext.catalog import CollectionInfo
from pgcontext.errors import ExportError

Conn = psycopg.Connection[Any]

_QUERY = """
    SELECT c.id, d.source, d.title, d.metadata, c.position, c.text, c.char_start, c.char_end,
           c.token_count, c.attributes ->> 'heading', c.embedding
    FROM pgcontext.chunk c JOIN pgcontext.document d ON d.id = c.document_id
    WHERE c.collection_id = %s
    ORDER BY d.source, c.position
"""
_MAX_LINKS = 40  # as Linux's own limit on following symbolic links
_DESCRIPTOR_FOLDER = re.compile(r"/proc/[^/]+/fd")


def export_lines(conn: Conn, collection: CollectionInfo) -> Iterator[bytes]:
    """One JSON line per chunk, documents in source order, chunks in position order."""
    model = {
        "name": collection.model.name,
        "revision": collection.model.revision,
        "dimensions": collection.model.dimensions,
    }
    # A named (server-side) cursor streams: a collection larger than memory exports fine.
    with conn.transaction(), conn.cursor(name="pgcontext_export") as cur:
        cur.itersize = 2000
        cur.execute(_QUERY, (collection.id,))
        for (
            chunk_id,
            source,
            title,
            metadata,
            position,
            text,
            start,
            end,
            tokens,
            heading,
            embedding,
        ) in cur:
            record = {
                "document": source,
                "chunk_id": chunk_id,
                "position": position,
                "title": title,
                "text": text,
                "metadata": metadata,
                "span": [start, end],
                "token_count": tokens,
                "heading": heading,
                "model": model,
                "embedding": embedding.to_numpy(),
            }
            try:
                line = orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY)
            except orjson.JSONEncodeError as exc:
                # Only data stored before ingest refused such values can get here.
                raise ExportError(
                    f"collection {collection.name!r}: document {source!r}, chunk {position}"
                    f" cannot be written as JSON ({exc}); its metadata holds a value ingest"
                    " now refuses (see the limits of JSONL records in the README): ingest"
                    " that document again with the value fixed"
                ) from exc
            yield line + b"\n"


def write_export(conn: Conn, collection: CollectionInfo, out: IO[bytes]) -> int:
    """Stream the export to `out`; returns the number of chunks written."""
    count = 0
    try:
        for line in export_lines(conn, collection):
            out.write(line)
            count += 1
    except ExportError as exc:
        raise ExportError(
            f"{exc}; the {count} lines written before it are an incomplete export: discard them"
        ) from exc
    return count


def export_to_file(conn: Conn, collection: CollectionInfo, path: Path) -> int:
    """Write the export to the file `path` names; returns the number of chunks.

    A regular file (new, or the one a chain of symbolic links ends at) is written whole or
    not at all, keeping an existing file's mode (and owner, as root) and the links to it.
    Anything else that exists (a FIFO, a device, /dev/stdout) is written through as a
    stream: not atomic, so a failure there says that what it received is incomplete.
    """
    target = _final_target(path)
    if target is None:
        return _export_to_stream(conn, collection, path)
    try:
        status: os.stat_result | None = os.lstat(target)
    except FileNotFoundError:
        status = None
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from exc
    if status is not None and stat.S_ISDIR(status.st_mode):
        raise ExportError(f"cannot write {path}: it is a directory; name a file in it")
    if status is not None and not stat.S_ISREG(status.st_mode):
        return _export_to_stream(conn, collection, target)
    return _export_atomically(conn, collection, path, target, status)


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


def _export_to_stream(conn: Conn, collection: CollectionInfo, path: Path) -> int:
    """Write through an existing FIFO or device (a FIFO waits for its reader)."""
    try:
        # O_APPEND: a descriptor's file opened by the shell with >> keeps what it had.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as out:
            return write_export(conn, collection, out)
    except OSError as exc:
        raise ExportError(
            f"cannot write {path}: {exc.strerror or exc}; it is not a regular file, so it "
            "was written directly (not atomically): what it received is incomplete"
        ) from exc


def _export_atomically(
    conn: Conn,
    collection: CollectionInfo,
    path: Path,
    target: Path,
    existing: os.stat_result | None,
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
            count = write_export(conn, collection, out)
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
