"""The ingest worker: claims jobs from the queue, embeds, writes, and keeps its leases alive.

Three threads per worker process:
- the main thread claims a job and prepares it (chunk + embed: the model's time);
- a writer thread stores each prepared job in one transaction together with marking the
  job done, so the model never waits for the database;
- a heartbeat thread renews the leases of the jobs this worker holds.
A job whose worker dies is claimed again when its lease expires; nothing half-written
survives, because writing and finishing a job commit together or not at all.
"""

from __future__ import annotations

import logging
import os
import queue as thread_queue
import socket
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from pgcontext import catalog
from pgcontext.catalog import CollectionInfo
from pgcontext.embed.base import Embedder
from pgcontext.ingest import jobs, writer
from pgcontext.ingest.outage import Outage, unavailable_reason
from pgcontext.ingest.pipeline import BatchProcessor, PreparedBatch
from pgcontext.ingest.report import IngestReport, Outcome, Progress
from pgcontext.limits import (
    DEFAULT_BACKOFF_SECONDS,
    DEFAULT_LEASE_SECONDS,
    MAX_SECONDS,
    check_float,
)

log = logging.getLogger(__name__)

EmbedderFor = Callable[[CollectionInfo], Embedder]


class LeaseLostError(Exception):
    """Another worker took the job over (this one was too slow or presumed dead)."""


@dataclass
class WorkerOptions:
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    backoff_seconds: float = DEFAULT_BACKOFF_SECONDS
    poll_seconds: float = 1.0
    once: bool = False
    """Stop when no job is queued or running (for `run_id` and `job_ids`, if set) instead
    of waiting."""
    run_id: str | None = None
    job_ids: tuple[int, ...] | None = None
    """Only these jobs (a run helping with the jobs of other runs it waits on)."""
    helping_run: str | None = None
    """The ingest run this worker serves while it works other runs' jobs: recorded in each
    result (`by_run`), so that the run which wrote a document is the one that counts it."""
    max_outage_seconds: float | None = None
    """Give up (DatabaseUnavailableError) when the database stays away this long; None
    waits as long as it takes (a daemon)."""
    name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")

    def __post_init__(self) -> None:
        # Refused here, before any job is claimed: a lease of 0 would be lost at once.
        check_float("lease_seconds", self.lease_seconds, 0.1, MAX_SECONDS)
        check_float("backoff_seconds", self.backoff_seconds, 0.0, MAX_SECONDS)
        check_float("poll_seconds", self.poll_seconds, 0.001, MAX_SECONDS)
        if self.max_outage_seconds is not None:
            check_float("max_outage_seconds", self.max_outage_seconds, 0.0, float("inf"))


@dataclass
class _Prepared:
    job: jobs.Job
    processor: BatchProcessor
    batch: PreparedBatch


class Worker:
    """Processes queue jobs until stopped (or, with `once`, until the queue is drained)."""

    def __init__(
        self,
        pool: ConnectionPool,
        embedder_for: EmbedderFor,
        options: WorkerOptions | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.pool = pool
        self.embedder_for = embedder_for
        self.options = options or WorkerOptions()
        self.progress = progress
        self.report = IngestReport(collection="*")
        self._stop = threading.Event()
        self._held: set[int] = set()
        self._held_lock = threading.Lock()
        self._writes: thread_queue.Queue[_Prepared | None] = thread_queue.Queue(maxsize=1)
        self._collections: dict[int, tuple[CollectionInfo, BatchProcessor, int]] = {}
        self._started = time.perf_counter()
        # Set only when the run is cut short (Ctrl-C, the outage bound): then no thread waits
        # for a connection. A graceful stop() still lets the job in hand get its connections.
        self._abort = threading.Event()
        self._outage = Outage(
            self.options.max_outage_seconds, self.options.poll_seconds, stop=self._abort
        )

    def _connection(self) -> AbstractContextManager[psycopg.Connection[Any]]:
        """A pooled connection, waited for no longer than the outage limit allows."""
        return self._outage.connection(self.pool)

    # -- control ------------------------------------------------------------------------

    def stop(self) -> None:
        """Finish the job in hand, then return from `run`."""
        self._stop.set()

    def run(self) -> IngestReport:
        self._started = time.perf_counter()
        writer_thread = threading.Thread(target=self._write_loop, name="pgcontext-writer")
        beat_thread = threading.Thread(
            target=self._heartbeat_loop, daemon=True, name="pgcontext-heartbeat"
        )
        writer_thread.start()
        beat_thread.start()
        try:
            self._claim_loop()
        except BaseException:
            # Ctrl-C or the outage bound: the writer and the release wait for no database.
            self._abort.set()
            self._stop.set()
            raise
        finally:
            self._writes.put(None)
            writer_thread.join()
            self._release_held()
            self._stop.set()
        self.report.seconds = time.perf_counter() - self._started
        return self.report

    # -- main thread: claim and prepare ---------------------------------------------------

    def _claim_loop(self) -> None:
        opts = self.options
        while not self._stop.is_set():
            attempt = time.monotonic()
            try:
                claimed = self._claim()
                drained = not claimed and opts.once and self._drained()
            except psycopg.OperationalError as exc:
                # The server restarted or the network broke: the pool reconnects.
                self._note_outage(exc, attempt)
                self._stop.wait(self._outage.retry_wait())  # raises past the limit
                continue
            self._outage.end()
            if drained:
                return
            if not claimed:
                self._stop.wait(opts.poll_seconds)
                continue
            for job in claimed:
                prepared = self._prepare(job)
                if prepared is not None:
                    self._writes.put(prepared)

    def _claim(self) -> list[jobs.Job]:
        with self._connection() as conn:
            claimed = jobs.claim(
                conn,
                self.options.name,
                lease_seconds=self.options.lease_seconds,
                run_id=self.options.run_id,
                job_ids=self.options.job_ids,
            )
        with self._held_lock:
            self._held.update(job.id for job in claimed)
        return claimed

    def _drained(self) -> bool:
        """No job left that this worker could ever claim (queued, backed off, or leased)."""
        # Jobs still being written by this worker count as running: wait for the writer.
        self._writes.join()
        run_id, job_ids = self.options.run_id, self.options.job_ids
        ids = None if job_ids is None else list(job_ids)
        with self._connection() as conn:
            row = conn.execute(
                "SELECT count(*) FROM pgcontext.ingest_queue"
                " WHERE status IN ('queued', 'running') AND (%s::text IS NULL OR run_id = %s)"
                " AND (%s::bigint[] IS NULL OR id = ANY(%s))",
                (run_id, run_id, ids, ids),
            ).fetchone()
        return row is not None and row[0] == 0

    def _prepare(self, job: jobs.Job) -> _Prepared | None:
        try:
            _, processor, _ = self._collection(job.collection_id)
            with self._connection() as conn:
                batch = processor.prepare(conn, job.documents, job.versions, job.hashes)
            return _Prepared(job, processor, batch)
        except Exception as exc:  # any failure of this attempt: retry later, with backoff
            self._note_outage(exc)
            self._fail(job, exc)
            return None

    def _collection(self, collection_id: int) -> tuple[CollectionInfo, BatchProcessor, int]:
        if collection_id not in self._collections:
            with self._connection() as conn:
                row = conn.execute(
                    "SELECT name FROM pgcontext.collection WHERE id = %s", (collection_id,)
                ).fetchone()
                if row is None:
                    raise LookupError(f"collection id {collection_id} no longer exists")
                info = catalog.get_collection(conn, row[0])
                ts_oid = writer.ts_config_oid(conn, info)
            processor = BatchProcessor(info, self.embedder_for(info))
            self._collections[collection_id] = (info, processor, ts_oid)
        return self._collections[collection_id]

    # -- writer thread --------------------------------------------------------------------

    def _write_loop(self) -> None:
        while True:
            item = self._writes.get()
            try:
                if item is None:
                    return
                self._write(item)
            finally:
                self._writes.task_done()

    def _write(self, item: _Prepared) -> None:
        job = item.job
        _, _, ts_oid = self._collections[job.collection_id]

        def finish(outcome: Outcome) -> None:
            result = {**outcome.as_result(), "worker": self.options.name}
            if self.options.helping_run is not None:
                result["by_run"] = self.options.helping_run
            if not jobs.finish(conn, job.id, self.options.name, result):
                raise LeaseLostError(f"job {job.id} was taken over by another worker")

        try:
            with self._connection() as conn:
                outcome = item.processor.write(conn, item.batch, ts_oid, finish)
        except LeaseLostError as exc:
            log.warning("%s; its work was rolled back", exc)
            self._forget(job.id)
            return
        except Exception as exc:
            self._note_outage(exc)
            self._fail(job, exc)
            return
        self._forget(job.id)
        self.report.add(outcome)
        self.report.seconds = time.perf_counter() - self._started
        if self.progress:
            self.progress(self.report)

    # -- failures, leases -----------------------------------------------------------------

    def _note_outage(self, exc: Exception, attempt_started: float | None = None) -> None:
        if isinstance(exc, psycopg.OperationalError) and not self._outage.active:
            self._outage.begin(unavailable_reason(exc, self.pool), attempt_started)

    def _fail(self, job: jobs.Job, exc: Exception) -> None:
        error = f"{type(exc).__name__}: {exc}"
        log.warning(
            "job %d attempt %d/%d failed: %s", job.id, job.attempts, job.max_attempts, error
        )
        try:
            with self._connection() as conn:
                status = jobs.fail(
                    conn,
                    job.id,
                    self.options.name,
                    error,
                    backoff_seconds=self.options.backoff_seconds,
                )
            if status == "failed":
                log.error("job %d failed for good: %s", job.id, error)
        except psycopg.Error as db_exc:
            # The database is away: the lease will expire and the job be claimed again.
            log.warning("could not record the failure of job %d: %s", job.id, db_exc)
        self._forget(job.id)

    def _forget(self, job_id: int) -> None:
        with self._held_lock:
            self._held.discard(job_id)

    def _heartbeat_loop(self) -> None:
        interval = max(self.options.lease_seconds / 3, 0.05)
        while not self._stop.wait(interval):
            with self._held_lock:
                held = sorted(self._held)
            if not held:
                continue
            try:
                with self._connection() as conn:
                    jobs.heartbeat(conn, self.options.name, held, self.options.lease_seconds)
            except psycopg.OperationalError as exc:
                self._note_outage(exc)  # logged once, however many beats fail
            except psycopg.Error as exc:
                log.warning("heartbeat failed: %s", exc)

    def _release_held(self) -> None:
        with self._held_lock:
            held = sorted(self._held)
            self._held.clear()
        if not held:
            return
        try:
            with self._connection() as conn:
                jobs.release(conn, self.options.name, held)
        except psycopg.Error as exc:
            log.warning("could not release jobs %s (their leases will expire): %s", held, exc)
