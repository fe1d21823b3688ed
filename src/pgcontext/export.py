"""`pgcontext export`: a collection's chunks as JSONL, the exact input of an import.

Each line is one chunk with its embedding and everything needed to rebuild the document
and to check the model on the way in: ingesting the file into another database restores
the collection without running the model.

A file is written next to its target under a temporary name and renamed onto it only when
complete, so a failed export leaves no file (or the previous one); a stream cannot be taken
back, so a failure there says that the output is incomplete.
"""

from __future__ import annotations

import os
import secrets
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
    """Write the export to `path` whole or not at all; returns the number of chunks."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        # O_EXCL: never through someone else's file; mode 0o666 lets the umask decide.
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as out:
            count = write_export(conn, collection, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
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
    _sync_directory(path.parent)
    return count


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
