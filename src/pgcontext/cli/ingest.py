"""`ingest`, `worker`, `retry` and `export`: documents in, the queue worked, chunks out."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from pgcontext import (
    DEFAULT_BACKOFF_SECONDS,
    DEFAULT_JOB_DOCUMENTS,
    DEFAULT_LEASE_SECONDS,
    DEFAULT_MAX_BYTES,
    MAX_JOB_DOCUMENTS,
    CollectionSettings,
    JsonlFields,
    WorkerOptions,
    fan_out,
)
from pgcontext.cli.errors import fail
from pgcontext.cli.options import (
    check_paths_value,
    collection_option,
    json_option,
    seconds,
    shown,
)
from pgcontext.cli.progress import IngestProgress
from pgcontext.cli.render import print_report
from pgcontext.cli.session import open_store
from pgcontext.cli.signals import interrupt_on_signals, stop_on_signals


@click.command()
@click.argument("paths", nargs=-1, required=True, callback=check_paths_value)
@collection_option
@click.option("--model", metavar="MODEL", help="Embedding model (new collections only).")
# The collection settings below are fixed at creation: for an existing collection, a value
# other than its own is refused (it would be ignored), and leaving one out keeps its own.
@click.option(
    "--chunk-tokens",
    type=int,
    help="Chunk size in model tokens of a new collection [default: model max].",
)
@click.option(
    "--overlap",
    type=int,
    help="Tokens of overlap between chunks of a new collection [default: size/8].",
)
@click.option(
    "--language", help="Full-text search configuration of a new collection [default: english]."
)
@click.option(
    "--vector-type",
    type=click.Choice(["vector", "halfvec"]),
    help="HNSW index precision of a new collection [default: vector].",
)
@click.option("--id-field", metavar="FIELD", help="JSONL id field [default: _id, then id].")
@click.option("--title-field", metavar="FIELD", help="JSONL title field [default: title].")
@click.option(
    "--text-field", metavar="FIELD", help="JSONL text field [default: text, content or body]."
)
@click.option(
    "--prune",
    is_flag=True,
    help="Remove documents not seen in this run (skipped if any input failed).",
)
@shown(
    "--max-bytes",
    type=click.IntRange(1),
    default=DEFAULT_MAX_BYTES,
    help="Skip (and report) files larger than this.",
)
@click.option(
    "--enqueue",
    "enqueue_only",
    is_flag=True,
    help="Only queue the work, for `pgcontext worker` processes (here or on other machines).",
)
@shown(
    "--job-size",
    "job_documents",
    type=click.IntRange(1, MAX_JOB_DOCUMENTS),
    default=DEFAULT_JOB_DOCUMENTS,
    help="Most documents per queue job (one transaction each; jobs also end at ~256 chunks).",
)
@click.option(
    "--db-wait",
    type=click.FloatRange(0, min_open=True),
    metavar="SECONDS",
    help="Give up (exit code 1) when the database stays unreachable this long; the work "
    "written stays, the rest stays queued [default: PGCONTEXT_DB_WAIT_SECONDS or 60].",
)
@json_option
def ingest(
    paths: tuple[str, ...],
    collection: str,
    chunk_tokens: int | None,
    overlap: int | None,
    language: str | None,
    vector_type: str | None,
    id_field: str | None,
    title_field: str | None,
    text_field: str | None,
    db_wait: float | None,
    as_json: bool,
    **run: Any,
) -> None:
    """Read, chunk, embed and store documents: files, folders, JSONL/JSON, or - for stdin.

    Folders are read recursively (.txt .md .html .jsonl .json). Unchanged documents are
    skipped (not even queued); changed ones are replaced, re-embedding only the chunks
    whose text changed. The work goes through the ingest queue in Postgres: this command
    works its own jobs to the end (running workers help), or with --enqueue only queues
    them. Inputs that cannot be read are reported with the reason and the rest goes on;
    the exit code is 1 if any input failed. Only regular files are read: symlink loops,
    dangling links, FIFOs and devices are reported (pipe a stream to - instead).
    """
    progress = IngestProgress()
    with open_store(db_wait_seconds=db_wait) as store:
        # Made here: a value they refuse becomes a one-line error, like the store's own.
        settings = CollectionSettings(
            chunk_tokens=chunk_tokens,
            chunk_overlap=overlap,
            text_search_config=language,
            vector_type=vector_type,
        )
        fields = JsonlFields(id=id_field, title=title_field, text=text_field)
        try:
            # --model, --prune, --max-bytes, --enqueue and --job-size, as Store.ingest names them.
            report = store.ingest(
                collection, list(paths), settings=settings, fields=fields, progress=progress, **run
            )
        finally:
            progress.close()
    print_report(report, as_json)
    if not report.ok:
        sys.exit(1)


@click.command()
@click.option("--once", is_flag=True, help="Exit when the queue is empty instead of waiting.")
@shown(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=1,
    help="Worker processes (each loads the model; one per 2 cores is usually best).",
)
@seconds(
    "--lease",
    1,
    DEFAULT_LEASE_SECONDS,
    "Seconds a claimed job stays ours without a heartbeat before others may take it.",
)
@seconds(
    "--backoff",
    0,
    DEFAULT_BACKOFF_SECONDS,
    "Seconds before the first retry of a failed job; doubles on each attempt.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 4096),
    help="Passages per model forward pass [default: PGCONTEXT_BATCH_SIZE or 64].",
)
@json_option
@click.pass_context
def worker(
    ctx: click.Context,
    once: bool,
    concurrency: int,
    lease: float,
    backoff: float,
    batch_size: int | None,
    as_json: bool,
) -> None:
    """Work the ingest queue: claim jobs, embed, write; many workers may share one queue.

    Each job is written in one transaction together with its queue update, so a killed
    worker leaves nothing half-written; its jobs are claimed again when their lease
    expires. Failed attempts are retried with exponential backoff, then marked failed
    (see `pgcontext status`, `pgcontext retry`). SIGINT/SIGTERM finish the job in hand
    and exit; a second signal aborts it (its transaction rolls back). A database outage is
    waited out (logged when it starts and when it ends); with --once only for
    PGCONTEXT_DB_WAIT_SECONDS (default 60), then exit code 1. With --concurrency N, this
    process starts N workers (each prints its own report), passes these signals on to them,
    waits for all, and exits with 1 if any of them failed.
    """
    if concurrency > 1:
        verbose = ctx.find_root().params.get("verbose", 0)
        # Each child is a plain `pgcontext worker` with the same options.
        command = [sys.executable, "-m", "pgcontext.cli", *["-v"] * verbose, "worker"]
        command += ["--lease", str(lease), "--backoff", str(backoff)]
        command += ["--once"] * once + ["--json"] * as_json
        if batch_size is not None:
            command += ["--batch-size", str(batch_size)]
        sys.exit(fan_out(command, concurrency))
    options = WorkerOptions(lease_seconds=lease, backoff_seconds=backoff, once=once)
    progress = IngestProgress()
    with open_store(batch_size=batch_size) as store:
        runner = store.worker(options, progress=progress)
        try:
            with stop_on_signals(runner.stop):
                report = runner.run()
        finally:
            progress.close()
    report.collection = "queue"
    print_report(report, as_json)
    if not report.ok:
        sys.exit(1)


@click.command()
@click.option("--collection", "-c", metavar="NAME", help="Only this collection's jobs.")
def retry(collection: str | None) -> None:
    """Put failed ingest jobs back in the queue, with their attempts reset."""
    with open_store() as store:
        count = store.retry_failed(collection)
    click.echo(f"{count} failed jobs queued again; run `pgcontext worker` to process them")


@click.command()
@collection_option
@click.option(
    "--out",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File to write, whole or not at all; a FIFO or device is written through "
    "[default: standard output].",
)
def export(collection: str, out: Path | None) -> None:
    """Write a collection's chunks as JSONL with their embeddings.

    Each line: document, chunk_id, position, title, text, metadata, span, token_count,
    heading, model, embedding. `pgcontext ingest FILE -c NAME` on another database
    restores the collection without re-embedding (the model is checked on the way in).

    With --out, a file (or the file a symbolic link names) is written under a temporary
    name and renamed when complete: a failed or interrupted export leaves no file (or the
    previous one, with its permissions). A FIFO or device (/dev/null, /dev/stdout) is
    written through. Standard output cannot be taken back: if the export fails midway, the
    error says so and what was printed is incomplete.
    """
    with open_store() as store, interrupt_on_signals():
        try:
            count = store.export(collection, sys.stdout.buffer if out is None else out)
        except KeyboardInterrupt:
            kept = "a file is written whole or not at all" if out else "the output is incomplete"
            raise fail(f"export interrupted: {kept}") from None
    click.echo(f"exported {count} chunks of {collection}", err=True)
