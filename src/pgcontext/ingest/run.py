"""An ingest run: read the inputs into queue jobs, work them to the end, prune, report.

A run queues what changed (ingest.enqueue), then works its own jobs with a worker in this
process (other workers may help), waits for the jobs of other runs that already carry some
of its documents, and reports what the whole run did, whichever worker did it. `Ingestion`
is the ingest side of a Store: it gets the Store's pool, settings and two of its methods,
never the Store itself.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import psycopg
from psycopg_pool import ConnectionPool

from pgcontext import catalog
from pgcontext.catalog import CollectionInfo, CollectionSettings
from pgcontext.config import Settings
from pgcontext.embed.base import Embedder
from pgcontext.errors import ConfigError, DatabaseUnavailableError
from pgcontext.ingest import jobs, writer
from pgcontext.ingest.documents import JsonlFields, SourceDocument, SourceProblem
from pgcontext.ingest.enqueue import Awaited, enqueue_again, enqueue_items
from pgcontext.ingest.exchange import Importer
from pgcontext.ingest.outage import Outage
from pgcontext.ingest.report import IngestReport, Outcome, Progress
from pgcontext.ingest.sources import iter_documents
from pgcontext.ingest.versions import VersionTickets, ticketed
from pgcontext.ingest.worker import Worker, WorkerOptions
from pgcontext.limits import INT64_MAX, MAX_JOB_DOCUMENTS, check_int

log = logging.getLogger(__name__)

Items = Iterable[SourceDocument | SourceProblem]


class CollectionEmbedder(Protocol):
    """Store.collection_embedder: the collection's own model; another `model` is refused."""

    def __call__(self, collection: CollectionInfo, model: str | None = None) -> Embedder: ...


class CreateCollection(Protocol):
    """Store.create_collection: creates `name`, or returns it if its settings match."""

    def __call__(
        self, name: str, *, model: str | None = None, settings: CollectionSettings | None = None
    ) -> CollectionInfo: ...


@dataclass(frozen=True)
class Ingestion:
    """Ingest runs, queue workers and retries on one pool."""

    pool: ConnectionPool
    settings: Settings
    collection_embedder: CollectionEmbedder
    create_collection: CreateCollection

    def ingest(
        self,
        collection: str,
        sources: Iterable[str | Path] | Items,
        *,
        model: str | None,
        settings: CollectionSettings | None,
        fields: JsonlFields | None,
        max_bytes: int,
        prune: bool,
        enqueue_only: bool,
        job_documents: int,
        worker_options: WorkerOptions | None,
        progress: Progress | None,
    ) -> IngestReport:
        """Ingest paths (files, folders, "-") or SourceDocuments; creates the collection.

        The documents go through the ingest queue: with `enqueue_only` they stay there for
        `pgcontext worker` processes; otherwise this process works the run's jobs to the end
        (other workers may help) and reports what the whole run did. A database that stays
        unreachable for `settings.db_wait_seconds` ends the run (DatabaseUnavailableError);
        what was written stays, the rest stays queued.
        """
        started = time.perf_counter()
        catalog.validate_name(collection)
        check_int("max_bytes", max_bytes, 1, INT64_MAX)
        check_int("job_documents", job_documents, 1, MAX_JOB_DOCUMENTS)
        if prune and enqueue_only:
            raise ConfigError(
                "prune needs the run to finish: it cannot go with enqueue_only", parameter="prune"
            )
        # Paths are checked (stdin named twice) before anything is created; nothing is read.
        tickets = VersionTickets(self.pool, Outage(self.settings.db_wait_seconds, 1.0))
        items = _as_items(sources, fields or JsonlFields(), max_bytes, tickets)
        info = self._collection(collection, model, settings)
        report = IngestReport(collection=collection)
        options = self._bounded(
            replace(worker_options or WorkerOptions(), once=True, run_id=jobs.new_run_id())
        )
        outage = Outage(options.max_outage_seconds, options.poll_seconds)
        enqueued = enqueue_items(
            self.pool,
            outage,
            info.id,
            items,
            report,
            run_id=str(options.run_id),
            importer=self._importer(info, outage, report),
            job_documents=job_documents,
        )
        report.queued_jobs = enqueued.jobs
        report.expected_documents = len(enqueued.seen)
        if enqueue_only:
            # Left to other runs' jobs, identical: as good as stored, once those are done.
            report.unchanged += enqueued.awaited
            for job_id, awaited in enqueued.waiting_on.items():
                log.info("%d documents left to job %d of another run", len(awaited), job_id)
            report.left_queued = enqueued.jobs
        else:
            self._work_run(info, options, enqueued.waiting_on, report, progress)
            with self.pool.connection() as conn:
                _collect_run(conn, str(options.run_id), report)
                if prune:
                    _prune(conn, info, enqueued.seen, report)
            _forget_tombstones(self.pool)
        report.seconds = time.perf_counter() - started
        return report

    def worker(
        self, options: WorkerOptions | None = None, progress: Progress | None = None
    ) -> Worker:
        """A queue worker on this pool; `run()` it here, `stop()` it from elsewhere. With
        `once` and no `max_outage_seconds`, it waits `settings.db_wait_seconds` for an
        unreachable database."""
        return Worker(self.pool, self.collection_embedder, self._bounded(options), progress)

    def retry_failed(self, collection: str | None = None) -> int:
        """Put failed jobs (of `collection`, or all) back in the queue; returns how many."""
        if collection is not None:
            catalog.validate_name(collection)
        with self.pool.connection() as conn:
            return jobs.retry_failed(conn, collection)

    def _collection(
        self, name: str, model: str | None, settings: CollectionSettings | None
    ) -> CollectionInfo:
        """The collection to ingest into, created if new; a setting or model it would
        ignore is refused before any work."""
        with self.pool.connection() as conn:
            info = catalog.find_collection(conn, name)
            if info is not None and settings is not None:
                info.check_applies(catalog.with_known_language(conn, settings))
        if info is None:
            info = self.create_collection(name, model=model, settings=settings)
        if model is not None:
            self.collection_embedder(info, model)
        return info

    def _importer(self, info: CollectionInfo, outage: Outage, report: IngestReport) -> Importer:
        return Importer(
            self.pool,
            outage,
            info,
            outage.run(self.pool, lambda conn: writer.ts_config_oid(conn, info)),
            # Only imports without token counts need the model (loaded on first use).
            lambda text: self.collection_embedder(info).count_tokens(text),
            report,
        )

    def _bounded(self, options: WorkerOptions | None) -> WorkerOptions:
        """`options`, given the settings' bound on outages if someone waits for the run."""
        options = options or WorkerOptions()
        if options.once and options.max_outage_seconds is None:
            return replace(options, max_outage_seconds=self.settings.db_wait_seconds)
        return options

    def _work_run(
        self,
        info: CollectionInfo,
        options: WorkerOptions,
        waiting: Mapping[int, list[Awaited]],
        report: IngestReport,
        progress: Progress | None,
    ) -> None:
        """Work the run's jobs, then those of other runs it waits on, here."""
        runner = self.worker(options, _run_progress(report, progress))
        try:
            runner.run()
            self._await_jobs(info.id, waiting, report, options)
        except DatabaseUnavailableError as exc:
            written = runner.report.added + runner.report.updated
            raise DatabaseUnavailableError(
                f"{exc}. The {written} documents written before the outage stay stored; "
                "the rest of this run stays queued: `pgcontext worker --once` finishes it "
                "once the database is back",
                parameter=exc.parameter,
            ) from exc

    def _await_jobs(
        self,
        collection_id: int,
        waiting: Mapping[int, list[Awaited]],
        report: IngestReport,
        options: WorkerOptions,
    ) -> None:
        """Wait for the other runs' jobs this run relies on, helping with those jobs alone:
        a job whose run died still gets done (its lease expires, this worker claims it).
        Documents whose job failed for good are queued again as this run's own, and worked
        (`options.run_id`), so the run still stores what it read."""
        run_id = str(options.run_id)
        while waiting:
            helping = replace(options, run_id=None, job_ids=tuple(waiting), helping_run=run_id)
            self.worker(helping).run()
            with self.pool.connection() as conn:
                orphans = _collect_jobs(conn, collection_id, waiting, report, run_id)
                if not orphans:
                    return
                again = enqueue_again(conn, collection_id, orphans, report, run_id=run_id)
            report.queued_jobs += again.jobs
            if again.jobs:
                self.worker(options).run()
            waiting = again.waiting_on


def _run_progress(report: IngestReport, progress: Progress | None) -> Progress | None:
    """Progress of a run as seen by its own worker, with the run's totals known so far."""
    if progress is None:
        return None

    def show(worker_report: IngestReport) -> None:
        merged = IngestReport(
            collection=report.collection, expected_documents=report.expected_documents
        )
        merged.add(Outcome(unchanged=report.unchanged, problems=list(report.problems)))
        merged.add(worker_report)
        merged.seconds = worker_report.seconds
        progress(merged)

    return show


def _collect_run(conn: Any, run_id: str, report: IngestReport) -> None:
    """Add what every job of the run did, whichever worker did it, to `report`; the
    documents another ingest run wrote (working this job it waited on) count as unchanged
    here: that run reports them written."""
    for job in jobs.run_results(conn, run_id):
        if job["status"] == "done":
            outcome = Outcome.from_result(job["result"])
            if job["result"].get("by_run") not in (None, run_id):
                outcome = Outcome(
                    unchanged=outcome.added + outcome.updated + outcome.unchanged,
                    superseded=outcome.superseded,
                    problems=outcome.problems,
                )
            report.add(outcome)
        else:
            report.failed_jobs += 1
            sources = [d["source"] for d in job["payload"].get("documents", [])]
            for source in sources:
                report.problems.append(SourceProblem(source, f"job failed: {job['error']}"))


def _collect_jobs(
    conn: Any,
    collection_id: int,
    waiting: Mapping[int, list[Awaited]],
    report: IngestReport,
    run_id: str,
) -> list[Awaited]:
    """Count the documents left to other runs' jobs in `report`: if stored as this run read
    them, as written (added, updated) when this run's worker did the job and unchanged
    otherwise; superseded if newer content (or a delete) won, a problem if the job could
    not index them. Returns those whose job failed for good, to queue again."""
    outcomes = jobs.job_outcomes(conn, list(waiting))
    sources = [a.document.source for awaited in waiting.values() for a in awaited]
    stored = writer.stored_documents(conn, collection_id, sources)
    orphans: list[Awaited] = []
    counted = Outcome()
    for job_id, awaited in waiting.items():
        job = outcomes.get(job_id)
        if job is not None and job["status"] == "failed":
            orphans.extend(awaited)
            continue
        if job is None or job["status"] != "done":
            reason = f"left to job {job_id} of another ingest run, which has not finished"
            report.problems.extend(SourceProblem(a.document.source, reason) for a in awaited)
            continue
        failed = dict(job["result"].get("problems", []))
        worked_here = job["result"].get("by_run") == run_id
        if worked_here:
            counted.chunks_written += int(job["result"].get("chunks_written", 0))
            counted.chunks_embedded += int(job["result"].get("chunks_embedded", 0))
        for a in awaited:
            source = a.document.source
            if source in failed:
                report.problems.append(SourceProblem(source, failed[source]))
            elif source in stored and stored[source].content_hash == a.content_hash:
                counted.count(_written(a) if worked_here else "unchanged")
            else:
                counted.superseded += 1
    report.add(counted)
    return orphans


def _written(awaited: Awaited) -> str:
    """What writing a document left to a job did, given what was stored when it was left."""
    if awaited.stored_hash is None:
        return "added"
    return "unchanged" if awaited.stored_hash == awaited.content_hash else "updated"


def _prune(conn: Any, info: CollectionInfo, seen: set[str], report: IngestReport) -> None:
    if report.problems:
        # A source that failed to read may hide documents that still exist: keep them.
        log.warning("not pruning %s: %d inputs failed", info.name, len(report.problems))
        report.prune_skipped = True
        return
    removed = writer.delete_missing(conn, info.id, seen)
    report.removed = len(removed)
    for source in removed:
        log.info("removed %s: its source is gone", source)


def _as_items(
    sources: Iterable[str | Path] | Items,
    fields: JsonlFields,
    max_bytes: int,
    tickets: VersionTickets,
) -> Items:
    """Paths become a stream of documents, each with the version ticket taken before its
    file was read; documents pass through, with a ticket taken as they come. Nothing is
    read ahead."""
    if isinstance(sources, str | Path):
        sources = [sources]
    iterator = iter(sources)
    first = next(iterator, None)
    if first is None:
        return []
    stream = itertools.chain([first], iterator)
    if isinstance(first, SourceDocument | SourceProblem):
        return ticketed(stream, tickets, stamp=True)  # type: ignore[arg-type]
    paths: Iterable[str | Path] = stream  # type: ignore[assignment]
    read = iter_documents(paths, fields=fields, max_bytes=max_bytes, ticket=tickets.take)
    return ticketed(read, tickets, stamp=False)


def _forget_tombstones(pool: ConnectionPool) -> None:
    """Housekeeping after a run, in a transaction of its own: a failure (a deadlock with a
    writer re-adding a deleted source) costs nothing but a later try."""
    try:
        with pool.connection() as conn:
            writer.forget_tombstones(conn)
    except psycopg.Error as exc:
        log.warning("tombstones kept for a later run: %s", exc)
