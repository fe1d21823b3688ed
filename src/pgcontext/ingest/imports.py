"""Chunks that arrive with their embeddings: checked against the collection, written as is.

No queue and no model: the work is parsing and COPY, done right where the input is read,
in one transaction per batch like everything else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np
import psycopg
from psycopg_pool import ConnectionPool

from pgcontext.catalog import CollectionInfo
from pgcontext.ingest import queue, writer
from pgcontext.ingest.chunking import Chunk
from pgcontext.ingest.outage import Outage
from pgcontext.ingest.pipeline import IngestReport, Outcome, check_storable
from pgcontext.ingest.sources import PrecomputedChunk, SourceDocument, SourceProblem
from pgcontext.ingest.values import check_embedding, check_int4, check_text
from pgcontext.limits import INT4_MAX

Conn = psycopg.Connection[Any]
Item = SourceDocument | SourceProblem

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
    batch: list[SourceDocument] = field(default_factory=list)
    size: int = 0

    def add(self, doc: SourceDocument) -> None:
        problem = self._check(doc)
        if problem is not None:
            self.report.problems.append(problem)
            return
        self.batch.append(doc)
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
        self, batch: list[SourceDocument], conn: Conn
    ) -> tuple[int, list[writer.PreparedDocument], dict[str, str]]:
        """Write the changed documents of `batch`: (how many were unchanged, the documents
        written, what became of each)."""
        states = queue.source_states(conn, self.collection.id, [d.source for d in batch])
        changed = []
        for doc in batch:
            digest = _content_hash(doc)
            if not states[doc.source].unchanged(digest):
                changed.append((doc, digest))
        with conn.transaction():
            versions = writer.next_versions(conn, len(changed))
            prepared = [
                self._prepared(doc, digest, version)
                for (doc, digest), version in zip(changed, versions, strict=True)
            ]
            written = writer.write_batch(conn, self.collection, prepared, self.ts_oid)
        return len(batch) - len(changed), prepared, written

    def _check(self, doc: SourceDocument) -> SourceProblem | None:
        checked = check_storable(doc)
        if isinstance(checked, SourceProblem):
            return checked
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

    def _prepared(self, doc: SourceDocument, digest: str, version: int) -> writer.PreparedDocument:
        chunks = [_chunk(c, self.count_tokens) for c in doc.chunks]
        vectors = np.asarray([c.embedding for c in doc.chunks], dtype=np.float32)
        return writer.PreparedDocument(doc, digest, chunks, vectors, version)


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
