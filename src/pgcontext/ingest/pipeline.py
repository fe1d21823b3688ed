"""One-process ingestion: documents → chunks → embeddings → database, batch by batch."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psycopg

from pgcontext.catalog import CollectionInfo, require_model
from pgcontext.embed.base import Embedder
from pgcontext.errors import PgContextError
from pgcontext.ingest import writer
from pgcontext.ingest.chunking import Chunk, chunk_text
from pgcontext.ingest.sources import SourceDocument, SourceProblem

log = logging.getLogger(__name__)

Conn = psycopg.Connection[Any]


@dataclass
class IngestReport:
    """What an ingest run did; `problems` lists every input that could not be indexed."""

    collection: str
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    chunks_written: int = 0
    chunks_embedded: int = 0
    problems: list[SourceProblem] = field(default_factory=list)
    seconds: float = 0.0
    prune_skipped: bool = False

    @property
    def documents_seen(self) -> int:
        return self.added + self.updated + self.unchanged + len(self.problems)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "failed": len(self.problems),
            "chunks_written": self.chunks_written,
            "chunks_embedded": self.chunks_embedded,
            "seconds": round(self.seconds, 3),
            "prune_skipped": self.prune_skipped,
            "problems": [{"source": p.source, "reason": p.reason} for p in self.problems],
        }


Progress = Callable[[IngestReport], None]


@dataclass
class Ingestor:
    """Ingests into one collection with its own model; unchanged documents cost one lookup."""

    conn: Conn
    collection: CollectionInfo
    embedder: Embedder
    batch_chunks: int = 256
    progress: Progress | None = None

    def __post_init__(self) -> None:
        require_model(self.collection, self.embedder.spec)
        self._ts_oid = writer.ts_config_oid(self.conn, self.collection)

    def run(
        self, items: Iterable[SourceDocument | SourceProblem], *, prune: bool = False
    ) -> IngestReport:
        started = time.perf_counter()
        report = IngestReport(self.collection.name)
        seen: set[str] = set()
        for batch in self._batches(items, report, seen):
            self._ingest_batch(batch, report)
            report.seconds = time.perf_counter() - started
            if self.progress:
                self.progress(report)
        if prune and report.problems:
            # A source that failed to read may hide documents that still exist: keep them.
            log.warning(
                "not pruning %s: %d inputs failed", self.collection.name, len(report.problems)
            )
            report.prune_skipped = True
        elif prune:
            removed = writer.delete_missing(self.conn, self.collection.id, seen)
            report.removed = len(removed)
            for source in removed:
                log.info("removed %s: its source is gone", source)
        report.seconds = time.perf_counter() - started
        return report

    def _batches(
        self,
        items: Iterable[SourceDocument | SourceProblem],
        report: IngestReport,
        seen: set[str],
    ) -> Iterator[list[SourceDocument]]:
        # Batches are cut by size in characters, a cheap stand-in for chunks before chunking.
        budget = self.batch_chunks * self.collection.chunk_tokens * 4
        batch: list[SourceDocument] = []
        size = 0
        for item in items:
            seen.add(item.source)
            if isinstance(item, SourceDocument):
                item = _checked(item)
            if isinstance(item, SourceProblem):
                log.warning("skipped %s: %s", item.source, item.reason)
                report.problems.append(item)
                continue
            batch.append(item)
            size += len(item.text)
            if size >= budget:
                yield batch
                batch, size = [], 0
        if batch:
            yield batch

    def _ingest_batch(self, batch: list[SourceDocument], report: IngestReport) -> None:
        batch = _last_of_each_source(batch)
        stored = writer.stored_documents(
            self.conn, self.collection.id, [doc.source for doc in batch]
        )
        todo: list[tuple[SourceDocument, str]] = []
        for doc in batch:
            digest = writer.content_hash(doc)
            previous = stored.get(doc.source)
            if previous is not None and previous.content_hash == digest:
                report.unchanged += 1
            else:
                todo.append((doc, digest))
        if not todo:
            return
        replaced = [stored[doc.source].id for doc, _ in todo if doc.source in stored]
        chunked = self._chunk(todo, report)
        prepared, embedded = self._embed(chunked, writer.reusable_embeddings(self.conn, replaced))
        writer.write_batch(self.conn, self.collection, prepared, self._ts_oid)
        for item in prepared:
            if item.document.source in stored:
                report.updated += 1
            else:
                report.added += 1
            report.chunks_written += len(item.chunks)
        report.chunks_embedded += embedded

    def _chunk(
        self, todo: list[tuple[SourceDocument, str]], report: IngestReport
    ) -> list[tuple[SourceDocument, str, list[Chunk]]]:
        chunked = []
        for doc, digest in todo:
            try:
                chunks = chunk_text(
                    doc.text,
                    self.embedder,
                    max_tokens=self.collection.chunk_tokens,
                    overlap_tokens=self.collection.chunk_overlap,
                )
            except (PgContextError, ValueError) as exc:
                report.problems.append(SourceProblem(doc.source, f"cannot chunk: {exc}"))
                continue
            if not chunks:
                report.problems.append(SourceProblem(doc.source, "no text left to index"))
                continue
            chunked.append((doc, digest, chunks))
        return chunked

    def _embed(
        self,
        chunked: list[tuple[SourceDocument, str, list[Chunk]]],
        reusable: dict[str, Any],
    ) -> tuple[list[writer.PreparedDocument], int]:
        """Vectors for every chunk; only texts without a stored vector meet the model.

        Returns the documents ready to write and how many texts were embedded.
        """
        hashes = [[writer.text_hash(chunk.text) for chunk in chunks] for _, _, chunks in chunked]
        missing: dict[str, str] = {}
        for (_, _, chunks), digests in zip(chunked, hashes, strict=True):
            for chunk, digest in zip(chunks, digests, strict=True):
                if digest not in reusable:
                    missing.setdefault(digest, chunk.text)
        if missing:
            vectors = self.embedder.embed_documents(list(missing.values()))
            reusable = {**reusable, **dict(zip(missing, vectors, strict=True))}
        prepared = [
            writer.PreparedDocument(
                doc,
                digest,
                chunks,
                np.stack([np.asarray(reusable[h], np.float32) for h in digests]),
            )
            for (doc, digest, chunks), digests in zip(chunked, hashes, strict=True)
        ]
        return prepared, len(missing)


def _checked(doc: SourceDocument) -> SourceDocument | SourceProblem:
    """Refuse what PostgreSQL cannot store, before it can fail a whole batch.

    JSON escapes let NUL characters and lone surrogates past the UTF-8 check of the file:
    text columns reject NUL, jsonb rejects \\u0000, and neither encodes a lone surrogate.
    """
    try:
        payload = json.dumps([doc.source, doc.title, doc.text, doc.metadata], ensure_ascii=False)
        payload.encode("utf-8")
    except UnicodeEncodeError:
        return SourceProblem(doc.source, "contains a lone UTF-16 surrogate (\\ud800-\\udfff)")
    except (TypeError, ValueError) as exc:
        return SourceProblem(doc.source, f"metadata is not JSON-serialisable: {exc}")
    if "\x00" in payload or "\\u0000" in payload:
        return SourceProblem(doc.source, "contains a NUL character, which PostgreSQL cannot store")
    return doc


def _last_of_each_source(batch: list[SourceDocument]) -> list[SourceDocument]:
    """Two inputs with one source in a batch: the later wins, as it would across batches."""
    latest = {doc.source: doc for doc in batch}
    return list(latest.values())
