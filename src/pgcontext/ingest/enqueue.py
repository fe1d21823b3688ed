"""Reading inputs into queue jobs: problems reported, unchanged documents skipped at once."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg

from pgcontext.ingest import queue, writer
from pgcontext.ingest.imports import Importer, group_chunks
from pgcontext.ingest.pipeline import IngestReport, check_storable
from pgcontext.ingest.sources import SourceDocument, SourceProblem

log = logging.getLogger(__name__)

Conn = psycopg.Connection[Any]

DEFAULT_JOB_DOCUMENTS = 256
# A job also ends at about this many characters: ~256 chunks of a 254-token model. The
# model embeds each job in one call, and calls of a few hundred passages are nearly as
# efficient as one call over everything (it sorts by length to pad less).
DEFAULT_JOB_CHARACTERS = 256 * 1000


@dataclass
class Enqueued:
    jobs: int = 0
    seen: set[str] = field(default_factory=set)
    waiting_on: dict[int, list[writer.HashedDocument]] = field(default_factory=dict)
    """Jobs of other runs that already carry some of this run's documents, identical: the
    run waits for them instead of queuing the same work again (by job id)."""

    @property
    def awaited(self) -> int:
        return sum(len(documents) for documents in self.waiting_on.values())


def enqueue_items(
    conn: Conn,
    collection_id: int,
    items: Iterable[SourceDocument | SourceProblem],
    report: IngestReport,
    *,
    run_id: str,
    importer: Importer,
    job_documents: int = DEFAULT_JOB_DOCUMENTS,
    job_characters: int = DEFAULT_JOB_CHARACTERS,
    max_attempts: int = 5,
) -> Enqueued:
    """Queue every new or changed document in jobs of at most `job_documents` documents
    and about `job_characters` characters, each committed at once.

    Unchanged documents are counted in `report` and never queued; documents an unfinished
    job of another run already carries, identical, are left to it (see `Enqueued`);
    unreadable inputs are added to `report.problems`; documents that bring their own
    embeddings go to `importer`.
    """
    done = Enqueued()
    limits = (job_documents, job_characters)
    for unit in _units(group_chunks(items), report, done.seen, limits, importer):
        _enqueue_unit(conn, collection_id, unit, report, run_id, done, max_attempts)
    importer.flush()
    return done


def enqueue_again(
    conn: Conn,
    collection_id: int,
    documents: list[SourceDocument],
    report: IngestReport,
    *,
    run_id: str,
    job_documents: int = DEFAULT_JOB_DOCUMENTS,
    max_attempts: int = 5,
) -> Enqueued:
    """Queue this run's own copy of documents it had left to another run's job, which then
    failed for good: with new versions, as if read now (unless stored meanwhile)."""
    done = Enqueued()
    for start in range(0, len(documents), job_documents):
        unit = documents[start : start + job_documents]
        _enqueue_unit(conn, collection_id, unit, report, run_id, done, max_attempts)
    return done


def _enqueue_unit(
    conn: Conn,
    collection_id: int,
    unit: list[SourceDocument],
    report: IngestReport,
    run_id: str,
    done: Enqueued,
    max_attempts: int,
) -> None:
    with conn.transaction():
        queue.lock_collection(conn, collection_id)
        changed = _changed(conn, collection_id, unit, report, run_id, done.waiting_on)
        done.jobs += queue.enqueue(
            conn, collection_id, [changed], run_id=run_id, max_attempts=max_attempts
        )


def _changed(
    conn: Conn,
    collection_id: int,
    unit: list[SourceDocument],
    report: IngestReport,
    run_id: str,
    waiting_on: dict[int, list[writer.HashedDocument]],
) -> list[writer.HashedDocument]:
    """The documents of `unit` that need a job; the others are counted or waited for."""
    states = queue.source_states(conn, collection_id, [d.source for d in unit])
    changed = []
    for doc in unit:
        hashed = writer.HashedDocument.of(doc)
        digest = hashed.content_hash
        state = states[doc.source]
        pending = state.pending
        if pending is not None and pending.content_hash == digest:
            if pending.run_id == run_id:
                report.unchanged += 1  # the same input twice in this run
            else:
                waiting_on.setdefault(pending.job_id, []).append(hashed)
        elif state.unchanged(digest):
            report.unchanged += 1
        else:
            # New, changed, or unchanged while an older job carries other content: then
            # the job only gives the stored document a newer version, and the older loses.
            changed.append(hashed)
    return changed


def _units(
    items: Iterable[SourceDocument | SourceProblem],
    report: IngestReport,
    seen: set[str],
    limits: tuple[int, int],
    importer: Importer,
) -> Iterator[list[SourceDocument]]:
    max_documents, max_characters = limits
    unit: list[SourceDocument] = []
    characters = 0
    for item in items:
        seen.add(item.source)
        if isinstance(item, SourceDocument) and item.chunks:
            importer.add(item)
            continue
        checked = check_storable(item) if isinstance(item, SourceDocument) else item
        if isinstance(checked, SourceProblem):
            log.warning("skipped %s: %s", checked.source, checked.reason)
            report.problems.append(checked)
            continue
        unit.append(checked)
        characters += len(checked.text)
        if len(unit) >= max_documents or characters >= max_characters:
            yield unit
            unit, characters = [], 0
    if unit:
        yield unit
