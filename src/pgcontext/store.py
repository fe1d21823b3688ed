"""`Store`: the Python entry point, one database of collections. A facade: each method hands
its call to the part that does the work (models, search, answering, the ingest run, status)."""

from __future__ import annotations

import functools
import itertools
import logging
import os
import time
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import psycopg
from psycopg_pool import ConnectionPool

from pgcontext import catalog, status
from pgcontext.answering import Answering, answered
from pgcontext.catalog import CollectionInfo, CollectionSettings
from pgcontext.config import Settings
from pgcontext.context.assemble import ContextResult
from pgcontext.context.template import SystemTemplate
from pgcontext.db.database import open_database
from pgcontext.embed.base import Embedder
from pgcontext.errors import ConfigError, DatabaseUnavailableError
from pgcontext.export import export_to_file, write_export
from pgcontext.ingest import queue, writer
from pgcontext.ingest.enqueue import (
    DEFAULT_JOB_DOCUMENTS,
    Awaited,
    enqueue_again,
    enqueue_items,
)
from pgcontext.ingest.imports import Importer
from pgcontext.ingest.outage import Outage
from pgcontext.ingest.pipeline import IngestReport, Outcome, Progress
from pgcontext.ingest.sources import JsonlFields, SourceDocument, SourceProblem, iter_documents
from pgcontext.ingest.versions import VersionTickets, ticketed
from pgcontext.ingest.worker import Worker, WorkerOptions
from pgcontext.limits import DEFAULT_BUDGET_TOKENS, DEFAULT_CONTEXT_K
from pgcontext.llm.answer import DEFAULT_MAX_TOKENS, AnswerStream, ChatModel
from pgcontext.llm.tokenizer import TokenCounter
from pgcontext.models import Models
from pgcontext.retrieve.dense import DEFAULT_EF_SEARCH
from pgcontext.retrieve.hit import Hit
from pgcontext.retrieve.hybrid import Fusion
from pgcontext.retrieve.keyword import DEFAULT_B, DEFAULT_K1
from pgcontext.retrieve.options import DEFAULT_MODE, SearchOptions
from pgcontext.retrieve.rerank import Reranker
from pgcontext.retrieve.search import Searcher

log = logging.getLogger(__name__)

Items = Iterable[SourceDocument | SourceProblem]


class Store:
    """One database of collections. Use as a context manager, or call `close()`.

    >>> with Store.open() as store:                       # embedded server by default
    ...     store.ingest("docs", ["notes/"])
    ...     hits = store.search("how do I reset my password?", collection="docs")
    """

    def __init__(self, url: str, settings: Settings, pool: ConnectionPool) -> None:
        self.url = url
        self.settings = settings
        self._pool = pool
        self.models = Models(settings)
        self._searcher = Searcher(pool, self.models)
        self._answering = Answering(self._searcher, self.models, self.collection)

    @classmethod
    def open(
        cls,
        url: str | None = None,
        *,
        settings: Settings | None = None,
        upgrade: bool | None = None,
    ) -> Store:
        """Connect to `url`, or PGCONTEXT_DATABASE_URL, or else the embedded server (migrated
        automatically; an external database only with `upgrade=True`)."""
        settings = settings or Settings.from_env()
        url, pool = open_database(url, settings, upgrade)
        return cls(url, settings, pool)

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def connection(self) -> AbstractContextManager[psycopg.Connection[Any]]:
        """A connection of the store's pool (autocommit, pgvector types known), for tools."""
        return self._pool.connection()

    # -- models: each method is pgcontext.models.Models' of its name --------------------------

    def embedder(self, model: str | None = None) -> Embedder:
        return self.models.embedder(model)

    def register_embedder(self, embedder: Embedder) -> None:
        self.models.register_embedder(embedder)

    def collection_embedder(self, collection: CollectionInfo, model: str | None = None) -> Embedder:
        return self.models.collection_embedder(collection, model)

    def reranker(self) -> Reranker:
        return self.models.reranker()

    def set_reranker(self, reranker: Reranker) -> None:
        self.models.set_reranker(reranker)

    # -- collections --------------------------------------------------------------------

    def create_collection(
        self, name: str, *, model: str | None = None, settings: CollectionSettings | None = None
    ) -> CollectionInfo:
        """Create `name` bound to `model`; returns the existing one if its settings match."""
        catalog.validate_name(name)  # a bad name is refused before the model loads
        spec = self.embedder(model).spec
        with self._pool.connection() as conn:
            return catalog.create_collection(conn, name, spec, settings)

    def collection(self, name: str) -> CollectionInfo:
        with self._pool.connection() as conn:
            return catalog.get_collection(conn, name)

    def collections(self) -> list[CollectionInfo]:
        with self._pool.connection() as conn:
            return catalog.list_collections(conn)

    def set_collection_metadata(self, name: str, patch: Mapping[str, Any]) -> None:
        """Merge `patch` into the collection's metadata (free-form notes, e.g. eval state)."""
        with self._pool.connection() as conn:
            catalog.update_metadata(conn, name, patch)

    def drop_collection(self, name: str) -> bool:
        with self._pool.connection() as conn:
            return catalog.drop_collection(conn, name)

    # -- ingest -------------------------------------------------------------------------

    def ingest(
        self,
        collection: str,
        sources: Iterable[str | Path] | Items,
        *,
        model: str | None = None,
        settings: CollectionSettings | None = None,
        fields: JsonlFields | None = None,
        prune: bool = False,
        max_bytes: int = 50_000_000,
        progress: Progress | None = None,
        enqueue_only: bool = False,
        job_documents: int = DEFAULT_JOB_DOCUMENTS,
        worker_options: WorkerOptions | None = None,
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
        if prune and enqueue_only:
            raise ConfigError("--prune needs the run to finish: it cannot go with --enqueue")
        # Paths are checked (stdin named twice) before anything is created; nothing is read.
        items = _as_items(sources, fields or JsonlFields(), max_bytes, self._tickets())
        with self._pool.connection() as conn:
            info = catalog.find_collection(conn, collection)
            if info is not None and settings is not None:
                # A setting that would be ignored is refused.
                info.check_applies(catalog.with_known_language(conn, settings))
        if info is None:
            info = self.create_collection(collection, model=model, settings=settings)
        if model is not None:
            self.collection_embedder(info, model)  # a wrong model fails before any work
        report = IngestReport(collection)
        run_id = queue.new_run_id()
        options = self._bounded(
            replace(worker_options or WorkerOptions(), once=True, run_id=run_id)
        )
        outage = Outage(options.max_outage_seconds, options.poll_seconds)
        importer = Importer(
            self._pool,
            outage,
            info,
            outage.run(self._pool, lambda conn: writer.ts_config_oid(conn, info)),
            # Only imports without token counts need the model (loaded on first use).
            lambda text: self.collection_embedder(info).count_tokens(text),
            report,
        )
        enqueued = enqueue_items(
            self._pool,
            outage,
            info.id,
            items,
            report,
            run_id=run_id,
            importer=importer,
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
            report.seconds = time.perf_counter() - started
            return report
        runner = self.worker(options, progress=_run_progress(report, progress))
        try:
            runner.run()
            self._await_jobs(info.id, enqueued.waiting_on, report, options)
        except DatabaseUnavailableError as exc:
            written = runner.report.added + runner.report.updated
            raise DatabaseUnavailableError(
                f"{exc}. The {written} documents written before the outage stay stored; "
                "the rest of this run stays queued: `pgcontext worker --once` finishes it "
                "once the database is back"
            ) from exc
        with self._pool.connection() as conn:
            _collect_run(conn, run_id, report)
            if prune:
                self._prune(conn, info, enqueued.seen, report)
        _forget_tombstones(self._pool)
        report.seconds = time.perf_counter() - started
        return report

    def _tickets(self) -> VersionTickets:
        """Version tickets for what a run reads, waiting out an outage as a run does."""
        return VersionTickets(self._pool, Outage(self.settings.db_wait_seconds, 1.0))

    def worker(
        self, options: WorkerOptions | None = None, *, progress: Progress | None = None
    ) -> Worker:
        """A queue worker on this store's pool; `run()` it here, `stop()` it from elsewhere.
        With `once` and no `max_outage_seconds`, it waits `settings.db_wait_seconds` for an
        unreachable database."""
        return Worker(self._pool, self.collection_embedder, self._bounded(options), progress)

    def _bounded(self, options: WorkerOptions | None) -> WorkerOptions:
        """`options`, given the settings' bound on outages if someone waits for the run."""
        options = options or WorkerOptions()
        if options.once and options.max_outage_seconds is None:
            return replace(options, max_outage_seconds=self.settings.db_wait_seconds)
        return options

    def work(
        self, options: WorkerOptions | None = None, *, progress: Progress | None = None
    ) -> IngestReport:
        """Run a queue worker in this process until it stops (see `pgcontext worker`)."""
        return self.worker(options, progress=progress).run()

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
        run_id = options.run_id
        assert run_id is not None
        while waiting:
            self.work(replace(options, run_id=None, job_ids=tuple(waiting), helping_run=run_id))
            with self._pool.connection() as conn:
                orphans = _collect_jobs(conn, collection_id, waiting, report, run_id)
                if not orphans:
                    return
                again = enqueue_again(conn, collection_id, orphans, report, run_id=run_id)
            report.queued_jobs += again.jobs
            if again.jobs:
                self.work(options)
            waiting = again.waiting_on

    def export(self, collection: str, out: IO[bytes] | str | os.PathLike[str]) -> int:
        """Write the collection's chunks as JSONL (see pgcontext.export); returns the count.

        A path is written whole or not at all; a stream cannot be taken back, so on an
        ExportError what it received is incomplete.
        """
        info = self.collection(collection)
        with self._pool.connection() as conn:
            if isinstance(out, str | os.PathLike):
                return export_to_file(conn, info, Path(out))
            return write_export(conn, info, out)

    def retry_failed(self, collection: str | None = None) -> int:
        """Put failed ingest jobs back in the queue; returns how many."""
        if collection is not None:
            catalog.validate_name(collection)
        with self._pool.connection() as conn:
            return queue.retry_failed(conn, collection)

    def _prune(self, conn: Any, info: CollectionInfo, seen: set[str], report: IngestReport) -> None:
        if report.problems:
            # A source that failed to read may hide documents that still exist: keep them.
            log.warning("not pruning %s: %d inputs failed", info.name, len(report.problems))
            report.prune_skipped = True
            return
        removed = writer.delete_missing(conn, info.id, seen)
        report.removed = len(removed)
        for source in removed:
            log.info("removed %s: its source is gone", source)

    # -- retrieve: see pgcontext.retrieve.search and pgcontext.answering -----------------------

    def search(
        self,
        query: str,
        *,
        collection: str,
        k: int = 10,
        filter: Mapping[str, Any] | None = None,
        mode: str = DEFAULT_MODE,
        mmr: float | None = None,
        rerank: bool = False,
        rerank_fusion: str = "rrf",
        ef_search: int = DEFAULT_EF_SEARCH,
        k1: float = DEFAULT_K1,
        b: float = DEFAULT_B,
        fusion: Fusion | None = None,
        model: str | None = None,
        vector: Any = None,
    ) -> list[Hit]:
        """The k best chunks for `query`, hybrid (dense + BM25) by default; see SearchOptions.
        The query is embedded with the collection's own model (`model` must be the same); a
        ready `vector` replaces the embedding alone: BM25 and the reranker still read `query`."""
        options = SearchOptions(
            mode=mode,
            mmr_lambda=mmr,
            rerank=rerank,
            rerank_fusion=rerank_fusion,
            fusion=fusion or Fusion(),
            ef_search=ef_search,
            k1=k1,
            b=b,
        )
        return self._searcher.search(
            query, collection, k, filter, options, model=model, vector=vector
        )

    def context(
        self,
        prompt: str,
        *,
        collection: str,
        budget_tokens: int = DEFAULT_BUDGET_TOKENS,
        k: int = DEFAULT_CONTEXT_K,
        filter: Mapping[str, Any] | None = None,
        instructions: str | None = None,
        template: SystemTemplate | str | None = None,
        order: str = "relevance",
        tokenizer: str | TokenCounter | None = None,
        options: SearchOptions | None = None,
    ) -> ContextResult:
        """Chat messages for `prompt`: retrieved passages with citations, within the budget
        as `tokenizer` counts (a folder, a hub name, a TokenCounter; default: the bundled chat
        model's). `template` has $passages (and $instructions, $prompt); `order` "document"
        keeps the passages in document order; `options` says how to search."""
        return self._answering.context(
            prompt,
            collection,
            budget_tokens,
            k,
            filter,
            instructions,
            template,
            order,
            tokenizer,
            options,
        )

    def ask_stream(
        self,
        prompt: str,
        *,
        collection: str,
        model: ChatModel | None = None,
        local: bool = False,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        budget_tokens: int = DEFAULT_BUDGET_TOKENS,
        k: int = DEFAULT_CONTEXT_K,
        filter: Mapping[str, Any] | None = None,
        instructions: str | None = None,
        template: SystemTemplate | str | None = None,
        order: str = "relevance",
        tokenizer: str | TokenCounter | None = None,
        options: SearchOptions | None = None,
    ) -> AnswerStream:
        """The chat model's answer to `prompt` over the collection, as it streams: `model`,
        else the bundled one (`local`), else PGCONTEXT_LLM_URL's; the rest as `context`."""
        context = functools.partial(
            self.context,
            prompt,
            collection=collection,
            budget_tokens=budget_tokens,
            k=k,
            filter=filter,
            instructions=instructions,
            template=template,
            order=order,
            tokenizer=tokenizer,
            options=options,
        )
        return self._answering.stream(context, model=model, local=local, max_tokens=max_tokens)

    # The same parameters as ask_stream: the whole answer, with its citations.
    ask = answered(ask_stream)

    # -- status -------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Collections, queue counts and the latest job errors (`pgcontext status --json`)."""
        with self._pool.connection() as conn:
            return status.status(conn)


def _run_progress(report: IngestReport, progress: Progress | None) -> Progress | None:
    """Progress of a run as seen by its own worker, with the run's totals known so far."""
    if progress is None:
        return None

    def show(worker_report: IngestReport) -> None:
        merged = IngestReport(report.collection, expected_documents=report.expected_documents)
        merged.add(Outcome(unchanged=report.unchanged, problems=list(report.problems)))
        merged.add(
            Outcome(
                added=worker_report.added,
                updated=worker_report.updated,
                unchanged=worker_report.unchanged,
                superseded=worker_report.superseded,
                chunks_written=worker_report.chunks_written,
                chunks_embedded=worker_report.chunks_embedded,
                problems=worker_report.problems,
            )
        )
        merged.seconds = worker_report.seconds
        progress(merged)

    return show


def _collect_run(conn: Any, run_id: str, report: IngestReport) -> None:
    """Add what every job of the run did, whichever worker did it, to `report`; the
    documents another ingest run wrote (working this job it waited on) count as unchanged
    here: that run reports them written."""
    for job in queue.run_results(conn, run_id):
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
    jobs: Mapping[int, list[Awaited]],
    report: IngestReport,
    run_id: str,
) -> list[SourceDocument]:
    """Count the documents left to other runs' jobs in `report`: if stored as this run read
    them, as written (added, updated) when this run's worker did the job and unchanged
    otherwise; superseded if newer content (or a delete) won, a problem if the job could
    not index them. Returns those whose job failed for good, to queue again."""
    outcomes = queue.job_outcomes(conn, list(jobs))
    sources = [a.document.source for awaited in jobs.values() for a in awaited]
    stored = writer.stored_documents(conn, collection_id, sources)
    orphans: list[SourceDocument] = []
    counted = Outcome()
    for job_id, awaited in jobs.items():
        job = outcomes.get(job_id)
        if job is not None and job["status"] == "failed":
            orphans.extend(a.document for a in awaited)
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


__all__ = ["Store"]


def _forget_tombstones(pool: ConnectionPool) -> None:
    """Housekeeping after a run, in a transaction of its own: a failure (a deadlock with a
    writer re-adding a deleted source) costs nothing but a later try."""
    try:
        with pool.connection() as conn:
            writer.forget_tombstones(conn)
    except psycopg.Error as exc:
        log.warning("tombstones kept for a later run: %s", exc)
