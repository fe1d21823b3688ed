"""Reading inputs into queue jobs: problems reported, unchanged documents skipped at once."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from pgcontext.errors import DatabaseUnavailableError
from pgcontext.ingest import jobs, writer
from pgcontext.ingest.changes import check_types, split_batch, storable
from pgcontext.ingest.documents import SourceDocument, SourceProblem
from pgcontext.ingest.exchange import Importer, group_chunks
from pgcontext.ingest.outage import Outage
from pgcontext.ingest.report import IngestReport
from pgcontext.limits import DEFAULT_JOB_CHARACTERS, DEFAULT_JOB_DOCUMENTS

log = logging.getLogger(__name__)

Conn = psycopg.Connection[Any]

# A job also ends at about this many characters: ~256 chunks of a 254-token model. The
# model embeds each job in one call, and calls of a few hundred passages are nearly as
# efficient as one call over everything (it sorts by length to pad less).


@dataclass(frozen=True)
class Awaited(writer.HashedDocument):
    """A document left to another run's job, with the content hash stored when it was
    left (None: not stored): what writing it does, if this run ends up working that job."""

    stored_hash: str | None = None


@dataclass
class Enqueued:
    jobs: int = 0
    seen: set[str] = field(default_factory=set)
    waiting_on: dict[int, list[Awaited]] = field(default_factory=dict)
    """Jobs of other runs that already carry some of this run's documents, identical: the
    run waits for them instead of queuing the same work again (by job id)."""

    @property
    def awaited(self) -> int:
        return sum(len(documents) for documents in self.waiting_on.values())


def enqueue_items(
    pool: ConnectionPool,
    outage: Outage,
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
    embeddings go to `importer`. A job that fails with the database is tried again (on a
    fresh connection) while `outage` allows; then DatabaseUnavailableError, the jobs
    committed before it staying queued.
    """
    done = Enqueued()
    limits = (job_documents, job_characters)
    try:
        typed = _well_typed(items, report)
        for unit in _units(group_chunks(typed), report, done.seen, limits, importer):
            step = partial(_queue_unit, collection_id, unit, run_id, max_attempts)
            _tally(done, report, outage.run(pool, step))
        importer.flush()
    except DatabaseUnavailableError as exc:
        raise DatabaseUnavailableError(
            f"{exc}; while queuing documents: the {done.jobs} jobs queued before it stay "
            "queued (`pgcontext worker --once` works them once the database is back), the "
            "rest of the input was not queued: ingest it again then",
            parameter=exc.parameter,
        ) from exc
    return done


def enqueue_again(
    conn: Conn,
    collection_id: int,
    documents: Sequence[writer.HashedDocument],
    report: IngestReport,
    *,
    run_id: str,
    job_documents: int = DEFAULT_JOB_DOCUMENTS,
    max_attempts: int = 5,
) -> Enqueued:
    """Queue this run's own copy of documents it had left to another run's job, which then
    failed for good, with the versions this run read them with."""
    done = Enqueued()
    for start in range(0, len(documents), job_documents):
        unit = list(documents[start : start + job_documents])
        _tally(done, report, _queue_unit(collection_id, unit, run_id, max_attempts, conn))
    return done


Queued = tuple[int, int, dict[int, list[Awaited]]]


def _tally(done: Enqueued, report: IngestReport, queued: Queued) -> None:
    count, unchanged, waiting_on = queued
    done.jobs += count
    report.unchanged += unchanged
    for job_id, documents in waiting_on.items():
        done.waiting_on.setdefault(job_id, []).extend(documents)


def _queue_unit(
    collection_id: int,
    unit: list[writer.HashedDocument],
    run_id: str,
    max_attempts: int,
    conn: Conn,
) -> Queued:
    """One job for the documents of `unit` that need one, in one transaction: (jobs queued,
    documents unchanged, jobs of other runs waited for with their documents)."""
    waiting_on: dict[int, list[Awaited]] = {}
    with conn.transaction():
        jobs.lock_collection(conn, collection_id)
        changed, unchanged = _changed(conn, collection_id, unit, run_id, waiting_on)
        count = jobs.enqueue(
            conn, collection_id, [changed], run_id=run_id, max_attempts=max_attempts
        )
    return count, unchanged, waiting_on


def _changed(
    conn: Conn,
    collection_id: int,
    unit: list[writer.HashedDocument],
    run_id: str,
    waiting_on: dict[int, list[Awaited]],
) -> tuple[list[writer.HashedDocument], int]:
    """The documents of `unit` that need a job, and how many are unchanged; those an
    unfinished job of another run carries, identical, are waited for."""
    split = split_batch(conn, collection_id, unit)
    changed = []
    unchanged = len(split.unchanged)
    for hashed in split.changed:
        state = split.states[hashed.document.source]
        pending = state.pending
        if pending is None or pending.content_hash != hashed.content_hash:
            # New, changed, or unchanged while an older job carries other content: then
            # the job only gives the stored document a newer version, and the older loses.
            changed.append(hashed)
        elif pending.run_id == run_id:
            unchanged += 1  # the same input twice in this run
        else:
            stored = state.stored.content_hash if state.stored else None
            awaited = Awaited(hashed.document, hashed.content_hash, stored)
            waiting_on.setdefault(pending.job_id, []).append(awaited)
    return changed, unchanged


def _well_typed(
    items: Iterable[SourceDocument | SourceProblem], report: IngestReport
) -> Iterator[SourceDocument | SourceProblem]:
    """The items whose fields have the right types; each other one is its own problem
    (before chunks are grouped, which reads their fields)."""
    for item in items:
        wrong = check_types(item)
        if wrong is None:
            yield item
        else:
            # INFO: the report lists every problem; a face shows them once, in its words.
            log.info("skipped %s: %s", wrong.source, wrong.reason)
            report.problems.append(wrong)


def _units(
    items: Iterable[SourceDocument | SourceProblem],
    report: IngestReport,
    seen: set[str],
    limits: tuple[int, int],
    importer: Importer,
) -> Iterator[list[writer.HashedDocument]]:
    max_documents, max_characters = limits
    unit: list[writer.HashedDocument] = []
    characters = 0
    for item in items:
        seen.add(item.source)
        if isinstance(item, SourceDocument) and item.chunks:
            importer.add(item)
            continue
        checked = storable(item) if isinstance(item, SourceDocument) else item
        if isinstance(checked, SourceProblem):
            log.info("skipped %s: %s", checked.source, checked.reason)
            report.problems.append(checked)
            continue
        unit.append(checked)
        characters += len(checked.document.text)
        if len(unit) >= max_documents or characters >= max_characters:
            yield unit
            unit, characters = [], 0
    if unit:
        yield unit
