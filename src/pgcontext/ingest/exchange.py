"""The exchange format: a collection's chunks as JSONL lines, written by export, read back
by import.

Each line is one chunk with its embedding and everything needed to rebuild the document
and to check the model on the way in: ingesting the file into another database restores
the collection without running the model. A line is read by ingest.records (a record with
an `embedding`); consecutive chunks of one document are grouped here, checked against the
collection and written as they are, with no queue and no model, one transaction a batch.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson
import psycopg
from psycopg_pool import ConnectionPool

from pgcontext import catalog
from pgcontext.catalog import CollectionInfo
from pgcontext.errors import ExportError
from pgcontext.ingest import writer
from pgcontext.ingest.changes import split_batch, storable
from pgcontext.ingest.chunking import Chunk
from pgcontext.ingest.documents import PrecomputedChunk, SourceDocument, SourceProblem
from pgcontext.ingest.export_file import export_to_file
from pgcontext.ingest.outage import Outage
from pgcontext.ingest.report import IngestReport, Outcome
from pgcontext.ingest.values import check_embedding, check_int4, check_text
from pgcontext.limits import INT4_MAX

Conn = psycopg.Connection[Any]
Item = SourceDocument | SourceProblem

_QUERY = """
    SELECT c.id, d.source, d.title, d.metadata, c.position, c.text, c.char_start, c.char_end,
           c.token_count, c.attributes ->> 'heading', c.embedding
    FROM pgcontext.chunk c JOIN pgcontext.document d ON d.id = c.document_id
    WHERE c.collection_id = %s
    ORDER BY d.source, c.position
"""


def export(pool: ConnectionPool, collection: str, out: IO[bytes] | str | os.PathLike[str]) -> int:
    """Write the collection's chunks to `out` (a stream, or a path: see export_file);
    returns how many."""
    with pool.connection() as conn:
        info = catalog.get_collection(conn, collection)
        if isinstance(out, str | os.PathLike):
            return export_to_file(Path(out), partial(write_export, conn, info))
        return write_export(conn, info, out)


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


# -- import ----------------------------------------------------------------------

BATCH_CHUNKS = 2000


def group_chunks(items: Iterable[Item]) -> Iterator[Item]:
    """Merge consecutive one-chunk records of one document (as an export lists them)."""
    pending: SourceDocument | None = None
    for item in items:
        if isinstance(item, SourceDocument) and item.chunks:
            if pending is not None and pending.source == item.source:
                pending = replace(pending, chunks=pending.chunks + item.chunks)
                continue
            if pending is not None:
                yield _stitched(pending)
            pending = item
            continue
        if pending is not None:
            yield _stitched(pending)
            pending = None
        yield item
    if pending is not None:
        yield _stitched(pending)


def _stitched(doc: SourceDocument) -> SourceDocument:
    """The document text rebuilt from its chunks' spans (overlaps written once)."""
    chunks = tuple(sorted(doc.chunks, key=lambda c: c.position))
    # A span beyond int4 is refused by the importer: never pad gigabytes of text for it.
    if len(chunks) == 1 or any(chunk.end > INT4_MAX for chunk in chunks):
        return replace(doc, chunks=chunks)
    text = ""
    for chunk in chunks:
        if chunk.start > len(text):
            text += " " * (chunk.start - len(text))
        text = text[: chunk.start] + chunk.text + text[chunk.end :]
    return replace(doc, text=text, chunks=chunks)


@dataclass
class Importer:
    """Buffers documents with embeddings and writes them in batches of BATCH_CHUNKS, each
    batch retried whole while the database is away (within the outage's bound)."""

    pool: ConnectionPool
    outage: Outage
    collection: CollectionInfo
    ts_oid: int
    count_tokens: Callable[[str], int]
    report: IngestReport
    batch: list[writer.HashedDocument] = field(default_factory=list)
    size: int = 0

    def add(self, doc: SourceDocument) -> None:
        checked = storable(doc, _content_hash, self._chunks_problem)
        if isinstance(checked, SourceProblem):
            self.report.problems.append(checked)
            return
        self.batch.append(checked)
        self.size += len(doc.chunks)
        if self.size >= BATCH_CHUNKS:
            self.flush()

    def flush(self) -> None:
        if not self.batch:
            return
        batch, self.batch, self.size = self.batch, [], 0
        unchanged, prepared, written = self.outage.run(self.pool, partial(self._write, batch))
        self.report.unchanged += unchanged
        outcome = Outcome()
        outcome.count_written(prepared, written)
        self.report.add(outcome)

    def _write(
        self, batch: list[writer.HashedDocument], conn: Conn
    ) -> tuple[int, list[writer.PreparedDocument], dict[str, str]]:
        """Write the changed documents of `batch`: (how many were unchanged, the documents
        written, what became of each)."""
        split = split_batch(conn, self.collection.id, batch)
        with conn.transaction():
            versions = writer.next_versions(conn, len(split.changed))
            prepared = [
                self._prepared(hashed, version)
                for hashed, version in zip(split.changed, versions, strict=True)
            ]
            written = writer.write_batch(conn, self.collection, prepared, self.ts_oid)
        return len(split.unchanged), prepared, written

    def _chunks_problem(self, doc: SourceDocument) -> SourceProblem | None:
        """What keeps a document's chunks out of this collection (checked before their
        vectors are hashed)."""
        model = self.collection.model
        for chunk in doc.chunks:
            problem = _chunk_problem(chunk)
            if problem is not None:
                return SourceProblem(doc.source, f"chunk {chunk.position}: {problem}")
            if len(chunk.embedding) != model.dimensions:
                return SourceProblem(
                    doc.source,
                    f"chunk {chunk.position}: embedding has {len(chunk.embedding)} dimensions, "
                    f"collection {self.collection.name!r} ({model.name}) has {model.dimensions}",
                )
            if chunk.model is not None and not _same_model(chunk.model, model.name, model.revision):
                return SourceProblem(
                    doc.source,
                    f"chunk {chunk.position}: embedded with {chunk.model}, but collection "
                    f"{self.collection.name!r} uses {model.name}@{model.revision}",
                )
        return None

    def _prepared(self, hashed: writer.HashedDocument, version: int) -> writer.PreparedDocument:
        doc = hashed.document
        chunks = [_chunk(c, self.count_tokens) for c in doc.chunks]
        vectors = np.asarray([c.embedding for c in doc.chunks], dtype=np.float32)
        return writer.PreparedDocument(doc, hashed.content_hash, chunks, vectors, version)


def _chunk_problem(chunk: PrecomputedChunk) -> str | None:
    """What of a chunk's own numbers its int4 and vector columns cannot hold."""
    counts = [("position", chunk.position), ("span start", chunk.start), ("span end", chunk.end)]
    if chunk.token_count is not None:
        counts.append(("token_count", chunk.token_count))
    for name, value in counts:
        problem = check_int4(value, name)
        if problem is not None:
            return problem
    heading = check_text(chunk.heading, "heading") if chunk.heading is not None else None
    return heading or check_text(chunk.text, "text") or check_embedding(chunk.embedding)


def _chunk(chunk: PrecomputedChunk, count_tokens: Callable[[str], int]) -> Chunk:
    tokens = chunk.token_count if chunk.token_count is not None else count_tokens(chunk.text)
    return Chunk(chunk.position, chunk.text, chunk.start, chunk.end, tokens, chunk.heading)


def _same_model(label: str, name: str, revision: str) -> bool:
    said_name, _, said_revision = label.partition("@")
    return said_name == name and (not said_revision or said_revision == revision)


def _content_hash(doc: SourceDocument) -> str:
    """Text, title, metadata and the vectors themselves decide "unchanged"."""
    digest = hashlib.sha256(writer.content_hash(doc).encode())
    for chunk in doc.chunks:
        digest.update(np.asarray(chunk.embedding, dtype=np.float32).tobytes())
    return digest.hexdigest()
