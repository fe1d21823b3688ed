"""One batch of documents → chunks → embeddings → rows.

`BatchProcessor.prepare` does the model's work (outside any transaction); `write` stores a
prepared batch in one transaction, together with whatever the caller commits with it (the
queue update), so a crash leaves either all of a batch or none of it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import psycopg

from pgcontext.catalog import CollectionInfo, require_model
from pgcontext.embed.base import Embedder
from pgcontext.errors import ChangedWhilePreparedError, PgContextError
from pgcontext.ingest import writer
from pgcontext.ingest.changes import split_batch, storable
from pgcontext.ingest.chunking import Chunk, chunk_text
from pgcontext.ingest.documents import SourceDocument, SourceProblem
from pgcontext.ingest.report import Outcome

log = logging.getLogger(__name__)

Conn = psycopg.Connection[Any]

# Times a batch is written again after some of its documents changed under it; past that,
# the job fails this attempt (ChangedWhilePreparedError) and is retried later.
MAX_PREPARES = 3


@dataclass
class PreparedBatch:
    """A batch chunked and embedded; `outcome` counts all but what writing adds."""

    documents: list[writer.PreparedDocument]
    outcome: Outcome


@dataclass
class BatchProcessor:
    """Turns documents into rows for one collection with its own model."""

    collection: CollectionInfo
    embedder: Embedder
    # The worker's main thread prepares jobs while its writer thread may prepare a changed
    # document again: fast tokenizers must not be used by two threads at once.
    _model_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __post_init__(self) -> None:
        require_model(self.collection, self.embedder.spec)

    def prepare(
        self,
        conn: Conn,
        documents: Iterable[SourceDocument],
        versions: Mapping[str, int],
        hashes: Mapping[str, str] | None = None,
    ) -> PreparedBatch:
        """Chunk and embed (only texts not stored yet) each document of `versions[source]`
        (0 if absent: the oldest) that is neither unchanged nor superseded already.

        A document with a content hash in `hashes` was checked and hashed when queued;
        the others are checked and hashed here.
        """
        outcome = Outcome()
        batch: list[writer.HashedDocument] = []
        for doc in _last_of_each_source(documents):
            digest = hashes.get(doc.source) if hashes else None
            hashed = storable(doc) if digest is None else writer.HashedDocument(doc, digest)
            if isinstance(hashed, SourceProblem):
                outcome.problems.append(hashed)
            else:
                batch.append(hashed)
        split = split_batch(conn, self.collection.id, batch, versions)
        outcome.superseded += len(split.superseded)  # the write would refuse them: spare the model
        # Still written, to take the newer version: older queued jobs then lose.
        unchanged = [
            writer.PreparedDocument(
                h.document, h.content_hash, None, None, versions.get(h.document.source, 0)
            )
            for h in split.unchanged
        ]
        todo = [(h.document, h.content_hash) for h in split.changed]
        stored = [split.states[doc.source].stored for doc, _ in todo]
        replaced = [previous.id for previous in stored if previous is not None]
        with self._model_lock:
            chunked = self._chunk(todo, outcome)
        reusable = writer.reusable_embeddings(conn, replaced) if chunked else {}
        with self._model_lock:
            prepared, outcome.chunks_embedded = self._embed(chunked, reusable, versions, outcome)
        return PreparedBatch(prepared + unchanged, outcome)

    def write(
        self, conn: Conn, batch: PreparedBatch, ts_oid: int, also: Callable[[Outcome], None]
    ) -> Outcome:
        """Write the batch and run `also` (e.g. finish the job) in the same transaction.

        A document prepared as unchanged that another writer changed meanwhile is prepared
        again, alone, and the batch written anew: the rest of the batch never waits for a
        retry of the job, and the job spends no attempt on it.
        """
        for _ in range(MAX_PREPARES):
            try:
                return self._write_once(conn, batch, ts_oid, also)
            except ChangedWhilePreparedError as exc:
                log.info("%s", exc)
                batch = self._prepare_again(conn, batch, set(exc.sources))
        return self._write_once(conn, batch, ts_oid, also)

    def _prepare_again(self, conn: Conn, batch: PreparedBatch, sources: set[str]) -> PreparedBatch:
        redo = [p for p in batch.documents if p.document.source in sources]
        again = self.prepare(
            conn,
            [p.document for p in redo],
            {p.document.source: p.version for p in redo},
            {p.document.source: p.content_hash for p in redo},
        )
        outcome = replace(batch.outcome, problems=list(batch.outcome.problems))
        outcome.superseded += again.outcome.superseded
        outcome.chunks_embedded += again.outcome.chunks_embedded
        outcome.problems.extend(again.outcome.problems)
        kept = [p for p in batch.documents if p.document.source not in sources]
        return PreparedBatch(kept + again.documents, outcome)

    def _write_once(
        self, conn: Conn, batch: PreparedBatch, ts_oid: int, also: Callable[[Outcome], None]
    ) -> Outcome:
        outcome = replace(batch.outcome, problems=list(batch.outcome.problems))
        with conn.transaction():
            written = writer.write_batch(conn, self.collection, batch.documents, ts_oid)
            outcome.count_written(batch.documents, written)
            also(outcome)
        return outcome

    def _chunk(
        self, todo: list[tuple[SourceDocument, str]], outcome: Outcome
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
                outcome.problems.append(SourceProblem(doc.source, f"cannot chunk: {exc}"))
                continue
            if not chunks:
                outcome.problems.append(SourceProblem(doc.source, "no text left to index"))
                continue
            chunked.append((doc, digest, chunks))
        return chunked

    def _embed(
        self,
        chunked: list[tuple[SourceDocument, str, list[Chunk]]],
        reusable: dict[str, Any],
        versions: Mapping[str, int],
        outcome: Outcome,
    ) -> tuple[list[writer.PreparedDocument], int]:
        """Vectors for every chunk; only texts without a stored vector meet the model.

        Returns the documents ready to write and how many texts were embedded; a document
        the model fails on alone is a problem in `outcome`, the others are written.
        """
        hashes = [[writer.text_hash(chunk.text) for chunk in chunks] for _, _, chunks in chunked]
        wanted = [
            {digest: chunk.text for chunk, digest in zip(chunks, digests, strict=True)}
            for (_, _, chunks), digests in zip(chunked, hashes, strict=True)
        ]
        vectors, failed = _embed_apart(self.embedder, wanted, reusable)
        for index, reason in failed.items():
            source = chunked[index][0].source
            outcome.problems.append(SourceProblem(source, f"cannot embed: {reason}"))
        reusable = {**reusable, **vectors}
        prepared = [
            writer.PreparedDocument(
                doc,
                digest,
                chunks,
                np.stack([np.asarray(reusable[h], np.float32) for h in digests]),
                versions.get(doc.source, 0),
            )
            for index, ((doc, digest, chunks), digests) in enumerate(
                zip(chunked, hashes, strict=True)
            )
            if index not in failed
        ]
        return prepared, len(vectors)


def _embed_apart(
    embedder: Embedder, wanted: list[dict[str, str]], known: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[int, str]]:
    """Embed the texts (by hash) each document wants and `known` lacks, in one call.

    If the call fails, the documents are halved and each half tried again, down to single
    documents: only a document the model fails on alone is left out (its index, with the
    reason), at about 2·log2(n) extra calls per bad document, spent only on failure. If
    every document fails alone, the model is at fault, not the input: the first error is
    raised (the job is tried again later).
    """
    vectors: dict[str, Any] = {}
    failed: dict[int, str] = {}
    errors: list[Exception] = []

    def attempt(indexes: list[int]) -> None:
        texts: dict[str, str] = {}
        for index in indexes:
            for digest, text in wanted[index].items():
                if digest not in known and digest not in vectors:
                    texts.setdefault(digest, text)
        if not texts:
            return
        try:
            embedded = embedder.embed_documents(list(texts.values()))
        except Exception as exc:  # any model error: find the documents it belongs to
            errors.append(exc)
            if len(indexes) == 1:
                failed[indexes[0]] = f"{type(exc).__name__}: {exc}"
                return
            if len(errors) == 1:
                log.warning(
                    "embedding %d documents failed (%s); trying them apart", len(indexes), exc
                )
            middle = len(indexes) // 2
            attempt(indexes[:middle])
            attempt(indexes[middle:])
            return
        vectors.update(zip(texts, embedded, strict=True))

    attempt(list(range(len(wanted))))
    if failed and not vectors:
        raise errors[0]
    return vectors, failed


def _last_of_each_source(batch: Iterable[SourceDocument]) -> list[SourceDocument]:
    """Two inputs with one source in a batch: the later wins, as it would across batches."""
    latest = {doc.source: doc for doc in batch}
    # Sorted, so concurrent workers lock document rows in one order: no deadlocks.
    return [latest[source] for source in sorted(latest)]
