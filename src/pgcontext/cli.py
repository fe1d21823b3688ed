"""The `pgcontext` command: parses arguments, calls the Python API, prints. Nothing imports it."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import click
import psycopg

from pgcontext.catalog import CollectionSettings
from pgcontext.config import Settings, known_secrets
from pgcontext.errors import ModelLoadError, PgContextError
from pgcontext.ingest.report import IngestReport
from pgcontext.ingest.sources import JsonlFields, check_paths
from pgcontext.limits import (
    BUDGET_RANGE,
    DEFAULT_BUDGET_TOKENS,
    DEFAULT_CONTEXT_K,
    MAX_ANSWER_TOKENS,
    MAX_EF_SEARCH,
    MAX_K,
    check_query,
)
from pgcontext.progress import IngestProgress
from pgcontext.redact import RedactingFilter, redact_secrets, redact_url
from pgcontext.retrieve.dense import DEFAULT_EF_SEARCH
from pgcontext.retrieve.filters import compile_filter, parse_filter_json
from pgcontext.retrieve.options import DEFAULT_MODE, MODES, RERANK_DEPTH, SearchOptions
from pgcontext.store import Store

F = TypeVar("F", bound=Callable[..., Any])

DEMO_COLLECTION = "python-docs"
DEMO_PROMPT = "How does the with statement work?"


def _json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _error(message: str) -> click.ClickException:
    """The one way out with an error: one line, exit code 1, no secret in it."""
    return click.ClickException(redact_secrets(message, known_secrets()))


@contextmanager
def _store(
    upgrade: bool | None = None,
    *,
    batch_size: int | None = None,
    db_wait_seconds: float | None = None,
) -> Iterator[Store]:
    """Open the store; every pgcontext error becomes a one-line message and exit code 1."""
    try:
        settings = Settings.from_env()
        if batch_size is not None:
            settings = replace(settings, batch_size=batch_size)
        if db_wait_seconds is not None:
            settings = replace(settings, db_wait_seconds=db_wait_seconds)
        with Store.open(upgrade=upgrade, settings=settings) as store:
            yield store
    except PgContextError as exc:
        raise _error(str(exc)) from exc
    except psycopg.Error as exc:
        raise _error(f"database error: {str(exc).strip()}") from exc


def _json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")(func)


def _parse_filter(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    try:
        parsed = parse_filter_json(value)
        compile_filter(parsed)  # validates operators, keys and values now
        return parsed
    except PgContextError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from exc


def _check_query(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        check_query(value)  # a usage error before the model loads
    except PgContextError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from exc
    return value


def _check_paths(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> Any:
    try:
        check_paths(value)
    except PgContextError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from exc
    return value


def _filter_option(func: F) -> F:
    return click.option(
        "--filter",
        "filter_",
        metavar="JSON",
        callback=_parse_filter,
        help='Metadata filter, e.g. \'{"year": {"$gte": 2020}, "lang": {"$in": ["en"]}}\'.',
    )(func)


def _search_options(func: F) -> F:
    """--mode, --mmr, --rerank and --ef-search, gathered into one SearchOptions."""
    options = [
        click.option(
            "--mode",
            type=click.Choice(MODES),
            default=DEFAULT_MODE,
            show_default=True,
            help="hybrid: dense and BM25 fused by RRF; dense: HNSW over embeddings; "
            "keyword: BM25 only (no model).",
        ),
        click.option(
            "--mmr",
            "mmr_lambda",
            type=click.FloatRange(0.0, 1.0),
            metavar="LAMBDA",
            help="Diversify with maximal marginal relevance: 1 = relevance only, "
            "0 = diversity only; 0.5 is a common start.",
        ),
        click.option(
            "--rerank",
            is_flag=True,
            help=f"Re-order the top {RERANK_DEPTH} with the cross-encoder "
            "(needs pgcontext[rerank]; ~2 s on two cores).",
        ),
        click.option(
            "--ef-search",
            type=click.IntRange(1, MAX_EF_SEARCH),
            default=DEFAULT_EF_SEARCH,
            show_default=True,
            help="HNSW search breadth in dense mode: higher is more exact and slower.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _options(mode: str, mmr_lambda: float | None, rerank: bool, ef_search: int) -> SearchOptions:
    return SearchOptions(mode=mode, mmr_lambda=mmr_lambda, rerank=rerank, ef_search=ef_search)


def _collection_option(func: F) -> F:
    return click.option(
        "--collection", "-c", required=True, metavar="NAME", help="The collection to use."
    )(func)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(package_name="pgcontext")
def main(verbose: int) -> None:
    """pgcontext: your documents in PostgreSQL + pgvector, retrieved into LLM prompts.

    The database is PGCONTEXT_DATABASE_URL, or else an embedded PostgreSQL kept under
    PGCONTEXT_HOME (started on first use, reused afterwards). Models load offline; set
    PGCONTEXT_MODEL to embed new collections with another sentence-transformers model.
    """
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    secrets = known_secrets()
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter(secrets))
    sys.excepthook = _redacting_excepthook(secrets)
    if verbose == 0:
        # Progress lines on non-terminals are INFO of our own progress module.
        logging.getLogger("pgcontext.progress").setLevel(logging.INFO)
        # The worker logs a database outage once; the pool would log every reconnection.
        logging.getLogger("psycopg.pool").setLevel(logging.ERROR)


def _redacting_excepthook(secrets: list[str]) -> Callable[..., None]:
    """A traceback (a bug of ours) is still printed, but never with a secret in it."""
    import traceback

    def hook(kind: type[BaseException], value: BaseException, tb: Any) -> None:
        text = "".join(traceback.format_exception(kind, value, tb))
        sys.stderr.write(redact_secrets(text, secrets))

    return hook


# -- set-up ------------------------------------------------------------------------------


@main.command()
@click.option("--collection", "-c", metavar="NAME", help="Also create this collection.")
@click.option("--model", metavar="MODEL", help="Embedding model for the collection.")
def init(collection: str | None, model: str | None) -> None:
    """Start the database (embedded by default), create or upgrade the schema.

    With --collection, also create an empty collection bound to the embedding model.
    """
    with _store(upgrade=True) as store:
        click.echo(f"database ready: {redact_url(store.url)}")
        if collection:
            info = store.create_collection(collection, model=model)
            click.echo(f"collection {info.name!r} uses {info.model.describe()}")


@main.group()
def db() -> None:
    """Database schema and the embedded server."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Migrate the schema to this version and re-apply the SQL functions in sql/."""
    with _store(upgrade=True) as store:
        click.echo(f"schema up to date: {redact_url(store.url)}")


@db.command("url")
def db_url() -> None:
    """Print the database URL (for psql: psql "$(pgcontext db url)")."""
    with _store() as store:
        click.echo(store.url)


@db.command("stop")
def db_stop() -> None:
    """Stop the embedded server (it otherwise keeps running between commands).

    With PGCONTEXT_DATABASE_URL set to another server, pgcontext does not use the embedded
    server and stops nothing: exit code 1 (set to the embedded server's own URL, it stops it).
    """
    from pgcontext.db.embedded import serves_url, stop_embedded

    try:
        settings = Settings.from_env()
        url = settings.database_url
        if url is not None and not serves_url(settings.home, url):
            raise _error(
                f"PGCONTEXT_DATABASE_URL is set ({redact_url(url)}): "
                "pgcontext does not run that server, so nothing was stopped; unset it to "
                "stop the embedded server"
            )
        home = settings.home
        stopped = stop_embedded(home)
    except PgContextError as exc:
        raise _error(str(exc)) from exc
    click.echo("stopped" if stopped else f"no embedded server running in {home}")


# -- ingest ------------------------------------------------------------------------------


@main.command()
@click.argument("paths", nargs=-1, required=True, callback=_check_paths)
@_collection_option
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
    "--language",
    help="Full-text search configuration of a new collection [default: english].",
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
@click.option(
    "--max-bytes",
    type=click.IntRange(1),
    default=50_000_000,
    show_default=True,
    help="Skip (and report) files larger than this.",
)
@click.option(
    "--enqueue",
    is_flag=True,
    help="Only queue the work, for `pgcontext worker` processes (here or on other machines).",
)
@click.option(
    "--job-size",
    type=click.IntRange(1, 100_000),
    default=256,
    show_default=True,
    help="Most documents per queue job (one transaction each; jobs also end at ~256 chunks).",
)
@click.option(
    "--db-wait",
    type=click.FloatRange(0, min_open=True),
    metavar="SECONDS",
    help="Give up (exit code 1) when the database stays unreachable this long; the work "
    "written stays, the rest stays queued [default: PGCONTEXT_DB_WAIT_SECONDS or 60].",
)
@_json_option
def ingest(
    paths: tuple[str, ...],
    collection: str,
    model: str | None,
    chunk_tokens: int | None,
    overlap: int | None,
    language: str | None,
    vector_type: str | None,
    id_field: str | None,
    title_field: str | None,
    text_field: str | None,
    prune: bool,
    max_bytes: int,
    enqueue: bool,
    job_size: int,
    db_wait: float | None,
    as_json: bool,
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
    with _store(db_wait_seconds=db_wait) as store:
        # Made here: a value they refuse becomes a one-line error, like the store's own.
        settings = CollectionSettings(
            chunk_tokens=chunk_tokens,
            chunk_overlap=overlap,
            text_search_config=language,
            vector_type=vector_type,
        )
        fields = JsonlFields(id=id_field, title=title_field, text=text_field)
        try:
            report = store.ingest(
                collection,
                list(paths),
                model=model,
                settings=settings,
                fields=fields,
                prune=prune,
                max_bytes=max_bytes,
                progress=progress,
                enqueue_only=enqueue,
                job_documents=job_size,
            )
        finally:
            progress.close()
    _print_report(report, as_json)
    if not report.ok:
        sys.exit(1)


@main.command()
@click.option("--once", is_flag=True, help="Exit when the queue is empty instead of waiting.")
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Worker processes (each loads the model; one per 2 cores is usually best).",
)
@click.option(
    "--lease",
    type=click.FloatRange(1, 3600),
    default=60,
    show_default=True,
    help="Seconds a claimed job stays ours without a heartbeat before others may take it.",
)
@click.option(
    "--backoff",
    type=click.FloatRange(0, 3600),
    default=5,
    show_default=True,
    help="Seconds before the first retry of a failed job; doubles on each attempt.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 4096),
    help="Passages per model forward pass [default: PGCONTEXT_BATCH_SIZE or 64].",
)
@_json_option
def worker(
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
    PGCONTEXT_DB_WAIT_SECONDS (default 60), then exit code 1.
    """
    from pgcontext.ingest.worker import WorkerOptions

    options = WorkerOptions(lease_seconds=lease, backoff_seconds=backoff, once=once)
    if concurrency > 1:
        _spawn_workers(concurrency - 1, once, lease, backoff, batch_size)
    progress = IngestProgress()
    with _store(batch_size=batch_size) as store:
        runner = store.worker(options, progress=progress)
        try:
            with _stop_on_signals(runner.stop):
                report = runner.run()
        finally:
            progress.close()
    report.collection = "queue"
    _print_report(report, as_json)
    if not report.ok:
        sys.exit(1)


def _spawn_workers(
    count: int, once: bool, lease: float, backoff: float, batch_size: int | None
) -> None:
    """More worker processes; each is a plain `pgcontext worker` and exits on its own."""
    args = [
        sys.executable,
        "-m",
        "pgcontext.cli",
        "worker",
        "--lease",
        str(lease),
        "--backoff",
        str(backoff),
    ]
    if once:
        args.append("--once")
    if batch_size is not None:
        args += ["--batch-size", str(batch_size)]
    for _ in range(count):
        subprocess.Popen(args)


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def _on_signals(handler: Callable[[int, Any], None]) -> Iterator[None]:
    """`handler` for SIGINT and SIGTERM while the block runs; the previous ones after."""
    previous = {sig: signal.getsignal(sig) for sig in _STOP_SIGNALS}
    for sig in _STOP_SIGNALS:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, restored in previous.items():
            signal.signal(sig, restored)


def _stop_on_signals(stop: Callable[[], None]) -> AbstractContextManager[None]:
    """First SIGINT/SIGTERM: `stop()` (finish the job in hand); a second one aborts."""

    def handle(signum: int, frame: Any) -> None:
        click.echo(f"signal {signum}: finishing the job in hand (again to abort)", err=True)
        stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    return _on_signals(handle)


@main.command()
@_collection_option
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
    with _store() as store, _interrupt_on_signals():
        try:
            count = store.export(collection, sys.stdout.buffer if out is None else out)
        except KeyboardInterrupt:
            kept = "a file is written whole or not at all" if out else "the output is incomplete"
            raise _error(f"export interrupted: {kept}") from None
    click.echo(f"exported {count} chunks of {collection}", err=True)


def _interrupt_on_signals() -> AbstractContextManager[None]:
    """SIGTERM raises KeyboardInterrupt like SIGINT, so the export removes its temporary
    file; signals after the first are ignored until that clean-up is done."""

    def interrupt(signum: int, frame: Any) -> None:
        for sig in _STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        raise KeyboardInterrupt

    return _on_signals(interrupt)


@main.command()
@click.option("--collection", "-c", metavar="NAME", help="Only this collection's jobs.")
def retry(collection: str | None) -> None:
    """Put failed ingest jobs back in the queue, with their attempts reset."""
    with _store() as store:
        count = store.retry_failed(collection)
    click.echo(f"{count} failed jobs queued again; run `pgcontext worker` to process them")


def _print_report(report: IngestReport, as_json: bool) -> None:
    if as_json:
        _json(report.as_json())
        return
    click.echo(
        f"{report.collection}: {report.added} added, {report.updated} updated, "
        f"{report.unchanged} unchanged, "
        + (f"{report.superseded} superseded, " if report.superseded else "")
        + f"{report.removed} removed, {len(report.problems)} failed; "
        f"{report.chunks_written} chunks written ({report.chunks_embedded} embedded) "
        f"in {report.seconds:.1f}s"
    )
    if report.left_queued:
        click.echo(f"  {report.left_queued} jobs queued: run `pgcontext worker` to process them")
    if report.failed_jobs:
        jobs = "1 job" if report.failed_jobs == 1 else f"{report.failed_jobs} jobs"
        click.echo(
            f"  {jobs} failed for good (errors below): `pgcontext retry` queues them again,"
            " then `pgcontext worker --once` works them"
        )
    for problem in report.problems:
        click.echo(f"  failed: {problem.source}: {problem.reason}", err=True)


# -- retrieve ----------------------------------------------------------------------------


@main.command()
@click.argument("query", callback=_check_query)
@_collection_option
@click.option(
    "-k", type=click.IntRange(1, MAX_K), default=10, show_default=True, help="How many chunks."
)
@_filter_option
@_search_options
@_json_option
def search(
    query: str,
    collection: str,
    k: int,
    filter_: dict[str, Any] | None,
    as_json: bool,
    **options: Any,
) -> None:
    """Find the chunks that best match QUERY (hybrid dense + BM25 by default).

    The query is embedded with the collection's own model. Scores depend on the mode:
    cosine similarity (dense), BM25 (keyword), fused reciprocal rank (hybrid), or the
    reciprocal rank fusion of the cross-encoder's order with the first stage's (--rerank).
    """
    with _store() as store:
        hits = store.retrieve(collection, query, k=k, filter=filter_, options=_options(**options))
    if as_json:
        _json([hit.as_json() for hit in hits])
        return
    if not hits:
        click.echo("no results")
    for rank, hit in enumerate(hits, start=1):
        click.echo(f"{rank:>3}. {hit.score:.4f}  {hit.title or ''}  [{hit.source}]")
        click.echo(f"     {_snippet(hit.text)}")


def _snippet(text: str, width: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _context_options(func: F) -> F:
    """How the context is built: budget, k, filter, search, tokenizer, template, order."""
    options = [
        _collection_option,
        click.option(
            "--budget",
            type=click.IntRange(*BUDGET_RANGE),
            default=DEFAULT_BUDGET_TOKENS,
            show_default=True,
            help="Most tokens for the whole messages (system + user), as the chat model "
            "counts them.",
        ),
        click.option(
            "-k",
            type=click.IntRange(1, MAX_K),
            default=DEFAULT_CONTEXT_K,
            show_default=True,
            help="Chunks to retrieve before fitting the budget.",
        ),
        _filter_option,
        _search_options,
        click.option(
            "--tokenizer",
            metavar="FOLDER|NAME",
            help="The chat model's tokenizer: a local folder, or a hub name with "
            "PGCONTEXT_ALLOW_HUB=1 [default: the bundled SmolLM2's].",
        ),
        click.option(
            "--template",
            "template_file",
            type=click.Path(dir_okay=False, path_type=Path),
            help="System message template file: $passages (required), $instructions, $prompt.",
        ),
        click.option(
            "--template-text", metavar="TEXT", help="The same template, given as a string."
        ),
        click.option(
            "--order",
            type=click.Choice(["relevance", "document"]),
            default="relevance",
            show_default=True,
            help="Passages best first, or grouped by document in document order.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _context_kwargs(
    budget: int,
    k: int,
    filter_: dict[str, Any] | None,
    tokenizer: str | None,
    template_file: Path | None,
    template_text: str | None,
    order: str,
    **search: Any,
) -> dict[str, Any]:
    """Store.context's keyword arguments from the options `_context_options` adds."""
    from pgcontext.context.template import SystemTemplate

    if template_file is not None and template_text is not None:
        raise click.UsageError("give --template or --template-text, not both")
    template = (
        SystemTemplate.from_file(template_file)
        if template_file is not None
        else SystemTemplate(template_text)
        if template_text is not None
        else None
    )
    return {
        "budget_tokens": budget,
        "k": k,
        "filter": filter_,
        "tokenizer": tokenizer,
        "template": template,
        "order": order,
        "options": _options(**search),
    }


@main.command()
@click.argument("prompt", callback=_check_query)
@_context_options
@click.option(
    "--format",
    "format_",
    type=click.Choice(["messages", "text", "markdown"]),
    default="messages",
    show_default=True,
    help="messages: the OpenAI-style chat messages as JSON; text: the contents only; "
    "markdown: headed sections and the sources.",
)
@_json_option
def context(prompt: str, collection: str, format_: str, as_json: bool, **options: Any) -> None:
    """Build the LLM input for PROMPT: a system message of cited passages, then the prompt.

    --json prints {"messages", "citations", "tokens", "tokenizer"} (OpenAI-style chat
    messages and the citations as data).
    """
    with _store() as store:
        result = store.context(prompt, collection, **_context_kwargs(**options))
    if as_json:
        _json(result.as_json())
        return
    if format_ == "text":
        click.echo(result.as_text())
    elif format_ == "markdown":
        click.echo(result.as_markdown(), nl=False)
    else:
        _json(result.messages)  # ready to send as the "messages" of a chat completion
    click.echo(
        f"{len(result.citations)} passages, {result.tokens} tokens ({result.tokenizer})", err=True
    )


def _print_messages(result: Any) -> None:
    for message in result.messages:
        click.echo(f"--- {message['role']} ---")
        click.echo(message["content"])
    click.echo(
        f"--- {len(result.citations)} passages, {result.tokens} tokens ({result.tokenizer}) ---"
    )


@main.command()
@click.argument("prompt", callback=_check_query)
@_context_options
@click.option(
    "--local", is_flag=True, help="Answer with the bundled SmolLM2-135M (pgcontext[local])."
)
@click.option(
    "--max-tokens",
    type=click.IntRange(1, MAX_ANSWER_TOKENS),
    default=256,
    show_default=True,
    help="Most tokens in the answer.",
)
@_json_option
def ask(
    prompt: str, collection: str, local: bool, max_tokens: int, as_json: bool, **options: Any
) -> None:
    """Answer PROMPT from the collection: the context goes to a chat model, the answer
    streams back, followed by the sources it cited.

    The model is the OpenAI-compatible endpoint in PGCONTEXT_LLM_URL (with
    PGCONTEXT_LLM_MODEL and PGCONTEXT_LLM_API_KEY or PGCONTEXT_LLM_API_KEY_FILE), or with
    --local the small bundled model. With neither, the messages are printed instead.
    """
    with _store() as store:
        kwargs = _context_kwargs(**options)
        if not local and store.settings.llm is None:
            click.echo(
                "note: no chat model (set PGCONTEXT_LLM_URL or use --local): "
                "printing the messages instead",
                err=True,
            )
            result = store.context(prompt, collection, **kwargs)
            if as_json:
                _json(result.as_json())
            else:
                _print_messages(result)
            return
        stream = store.ask_stream(prompt, collection, local=local, max_tokens=max_tokens, **kwargs)
        for piece in stream:
            if not as_json:
                click.echo(piece, nl=False)
        answer = stream.answer
    if as_json:
        _json(answer.as_json())
        return
    _print_sources(answer)


def _print_sources(answer: Any) -> None:
    click.echo("")
    cited = answer.cited
    click.echo("\nSources cited:" if cited else "\nNo passage cited; the passages given were:")
    for c in cited or answer.context.citations:
        trimmed = ", trimmed" if c.trimmed else ""
        click.echo(
            f"  [{c.n}] {c.title or c.source} ({c.source}, chars {c.span[0]}-{c.span[1]}{trimmed})"
        )


# -- status, eval, demo ------------------------------------------------------------------


@main.command()
@_json_option
def status(as_json: bool) -> None:
    """Collections with their model and size, and the ingest queue."""
    with _store() as store:
        data = store.status()
        data["database"] = redact_url(store.url)
    if as_json:
        _json(data)
        return
    click.echo(f"database: {data['database']}")
    if not data["collections"]:
        click.echo("no collections yet: `pgcontext ingest PATH --collection NAME`")
    for col in data["collections"]:
        click.echo(
            f"  {col['name']}: {col['documents']} documents, {col['chunks']} chunks, "
            f"model {col['model']} ({col['dimensions']} dims)"
        )
    queue = data["queue"]
    click.echo(
        f"queue: {queue['queued']} queued, {queue['running']} running, {queue['done']} done, "
        f"{queue['failed']} failed"
    )
    for error in queue["errors"]:
        click.echo(
            f"  job {error['job']} ({error['collection']}, {error['status']} after "
            f"{error['attempts']} attempts, first document {error['source']}): {error['error']}"
        )
    if queue["failed"]:
        click.echo("  `pgcontext retry` queues failed jobs again")


@main.command("eval")
@click.argument("dataset_dir", type=click.Path(path_type=Path))
@click.option(
    "--collection",
    "-c",
    metavar="NAME",
    help="Collection to search [default: eval-<dataset name>].",
)
@click.option("--split", default="test", show_default=True, help="qrels/<split>.tsv to score.")
@click.option(
    "--mode",
    type=click.Choice(MODES),
    default="dense",
    show_default=True,
    help="dense: HNSW over embeddings; keyword: BM25 in SQL; hybrid: both, fused by RRF.",
)
@click.option(
    "--rerank",
    is_flag=True,
    help=f"Re-score the top {RERANK_DEPTH} with the cross-encoder (needs pgcontext[rerank]).",
)
@click.option(
    "--all",
    "all_modes",
    is_flag=True,
    help="Run dense, keyword, hybrid and hybrid + rerank (when installed); print one table.",
)
@_json_option
def eval_(
    dataset_dir: Path,
    collection: str | None,
    split: str,
    mode: str,
    rerank: bool,
    all_modes: bool,
    as_json: bool,
) -> None:
    """Score retrieval on a BEIR dataset: nDCG@10, Recall@10/100, MRR@10, latency.

    DATASET_DIR holds corpus.jsonl, queries.jsonl and qrels/<split>.tsv. The corpus is
    ingested first when the collection is missing or was built from another corpus.
    """
    from pgcontext.eval.runner import ALL_CONFIGURATIONS, run_eval

    ctx = click.get_current_context()
    if all_modes and (
        ctx.get_parameter_source("mode") is not click.core.ParameterSource.DEFAULT or rerank
    ):
        raise click.UsageError("--all runs every mode: leave out --mode and --rerank")
    progress = IngestProgress()
    with _store() as store:
        reranker = _optional_reranker() if all_modes else _reranker() if rerank else None
        configurations = (
            [(m, r) for m, r in ALL_CONFIGURATIONS if reranker is not None or not r]
            if all_modes
            else [(mode, rerank)]
        )
        try:
            results = [
                run_eval(
                    store,
                    dataset_dir,
                    collection=collection,
                    split=split,
                    progress=progress,
                    mode=m,
                    reranker=reranker if r else None,
                )
                for m, r in configurations
            ]
        finally:
            progress.close()
    if as_json:
        _json([r.as_json() for r in results] if all_modes else results[0].as_json())
        return
    if all_modes:
        _print_eval_table(results)
        return
    result = results[0]
    click.echo(
        f"{result.dataset} ({result.queries} queries, mode {result.mode}"
        f"{' + rerank' if result.rerank else ''}, "
        f"collection {result.collection})"
    )
    for key, value in result.metrics.items():
        click.echo(f"  {key:<11} {value:.4f}")
    click.echo(
        f"  latency     p50 {result.latency_ms['p50']:.1f} ms, "
        f"p95 {result.latency_ms['p95']:.1f} ms (embed + search)"
    )


def _print_eval_table(results: list[Any]) -> None:
    first = results[0]
    keys = list(first.metrics)
    click.echo(f"{first.dataset} ({first.queries} queries, collection {first.collection})\n")
    click.echo("| mode | " + " | ".join(keys) + " | p50 ms | p95 ms |")
    click.echo("|---" * (len(keys) + 3) + "|")
    for r in results:
        label = r.mode + (" + rerank" if r.rerank else "")
        values = " | ".join(f"{r.metrics[key]:.4f}" for key in keys)
        click.echo(
            f"| {label} | {values} | {r.latency_ms['p50']:.1f} | {r.latency_ms['p95']:.1f} |"
        )


def _optional_reranker() -> Any:
    """The cross-encoder, or None (with a note) when the rerank extra is not installed."""
    try:
        return _reranker()
    except PgContextError as exc:
        click.echo(f"note: no rerank row: {exc}", err=True)
        return None


@main.command("eval-answers")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", metavar="MODEL", help="Embedding model [default: PGCONTEXT_MODEL].")
@_json_option
def eval_answers(file: Path, model: str | None, as_json: bool) -> None:
    """Score answers against references: a rough signal, not a verdict.

    FILE is JSONL of {"question", "answer", "reference"}, optionally with "passages"
    (strings) or "cited_passages" (as `ask --json` writes them). Reports the embedding
    similarity of answer and reference, and the share of the reference's key terms found
    in the passages. Similarity rewards the right topic even when a fact is wrong and
    cannot see a negation; coverage shows whether the evidence was there, not whether the
    answer used it.
    """
    from pgcontext.config import apply_offline_mode
    from pgcontext.embed.registry import load_embedder
    from pgcontext.eval.answers import read_records, score_answers

    try:
        records = read_records(file)
        settings = Settings.from_env()
        apply_offline_mode(settings)
        embedder = load_embedder(model or settings.model, settings.model, settings.batch_size)
        report = score_answers(records, embedder)
    except PgContextError as exc:
        raise _error(str(exc)) from exc
    data = report.as_json()
    if as_json:
        _json(data)
        return
    click.echo(f"{data['records']} answers, embeddings by {data['model']}")
    for score in data["scores"]:
        coverage = "-" if score["coverage"] is None else f"{score['coverage']:.2f}"
        click.echo(
            f"  line {score['line']:>4}: similarity {score['similarity']:.3f}, "
            f"key terms in passages {coverage}  {_snippet(score['question'], 60)}"
        )
    mean_coverage = data["mean_coverage"]
    click.echo(
        f"mean similarity {data['mean_similarity']:.3f}, mean coverage "
        f"{'-' if mean_coverage is None else f'{mean_coverage:.3f}'}"
    )


def _reranker() -> Any:
    from pgcontext.retrieve.rerank import CrossEncoder

    return CrossEncoder()


@main.command()
@click.option(
    "--prompt",
    default=DEMO_PROMPT,
    show_default=True,
    callback=_check_query,
    help="The question to answer.",
)
@click.option(
    "--budget",
    type=click.IntRange(*BUDGET_RANGE),
    default=1500,
    show_default=True,
    help="Token budget of the assembled messages.",
)
@click.option("--no-answer", is_flag=True, help="Skip the answer by the bundled local model.")
def demo(prompt: str, budget: int, no_answer: bool) -> None:
    """Ingest the Python language reference (shipped with CPython) and answer a question.

    Starts the embedded database, creates the collection 'python-docs' with the default
    model, ingests the pydoc topics (skipped when unchanged), prints the best passages
    for the prompt, the chat messages an LLM would receive and, when pgcontext[local] is
    installed, the bundled SmolLM2-135M's answer with the sources it cited.
    """
    from pgcontext.ingest.sources import pydoc_topics

    topics = list(pydoc_topics())
    progress = IngestProgress()
    with _store() as store:
        click.echo(f"database: {redact_url(store.url)}")
        try:
            report = store.ingest(DEMO_COLLECTION, topics, progress=progress)
        finally:
            progress.close()
        _print_report(report, as_json=False)
        hits = store.search(DEMO_COLLECTION, prompt, k=5)
        click.echo(f"\nTop passages for: {prompt}")
        for rank, hit in enumerate(hits, start=1):
            click.echo(f"{rank}. score {hit.score:.4f}  {hit.source}  (chunk {hit.position})")
            click.echo(f"   {_snippet(hit.text)}")
        result = store.context(prompt, DEMO_COLLECTION, budget_tokens=budget)
        click.echo(
            f"\nChat messages ({result.tokens} {result.tokenizer} tokens, "
            f"{len(result.citations)} passages):"
        )
        _json(result.messages)
        if no_answer:
            return
        try:
            stream = store.ask_stream(
                prompt, DEMO_COLLECTION, local=True, budget_tokens=budget, max_tokens=160
            )
        except ModelLoadError as exc:
            click.echo(f"\n(no local answer: {exc})")
            return
        click.echo("\nAnswer by the bundled SmolLM2-135M-Instruct (a tiny model, offline):")
        for piece in stream:
            click.echo(piece, nl=False)
        _print_sources(stream.answer)


if __name__ == "__main__":
    main()
