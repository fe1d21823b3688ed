"""`Store`: the Python entry point. Opens the database (embedded by default) and does it all."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from psycopg_pool import ConnectionPool

from pgcontext import catalog
from pgcontext.arguments import check_text
from pgcontext.catalog import CollectionInfo, CollectionSettings
from pgcontext.config import Settings, apply_offline_mode
from pgcontext.context.assemble import ContextResult, assemble_context, check_order
from pgcontext.context.template import SystemTemplate
from pgcontext.db import migrate
from pgcontext.db.connection import open_pool
from pgcontext.db.embedded import embedded_url
from pgcontext.embed.base import Embedder
from pgcontext.embed.registry import load_embedder, resolve
from pgcontext.errors import (
    LlmError,
    ModelLoadError,
    ModelMismatchError,
)
from pgcontext.ingest import exchange
from pgcontext.ingest.documents import JsonlFields
from pgcontext.ingest.enqueue import DEFAULT_JOB_DOCUMENTS
from pgcontext.ingest.report import IngestReport, Progress
from pgcontext.ingest.run import DEFAULT_MAX_BYTES, Ingestion, Items
from pgcontext.ingest.worker import Worker, WorkerOptions
from pgcontext.limits import (
    BUDGET_RANGE,
    DEFAULT_BUDGET_TOKENS,
    DEFAULT_CONTEXT_K,
    MAX_ANSWER_TOKENS,
    MAX_EF_SEARCH,
    MAX_K,
    check_int,
    check_query,
)
from pgcontext.llm.answer import DEFAULT_MAX_TOKENS, Answer, AnswerStream, ChatModel
from pgcontext.llm.client import ChatClient
from pgcontext.llm.tokenizer import ContentCounter, TokenCounter, default_tokenizer, load_tokenizer
from pgcontext.retrieve.dense import DEFAULT_EF_SEARCH, dense_search
from pgcontext.retrieve.filters import compile_filter
from pgcontext.retrieve.hit import Hit
from pgcontext.retrieve.hybrid import Fusion
from pgcontext.retrieve.keyword import DEFAULT_B, DEFAULT_K1
from pgcontext.retrieve.options import DEFAULT_MODE, SearchOptions
from pgcontext.retrieve.pipeline import first_stage, retrieve
from pgcontext.retrieve.rerank import Reranker, apply_rerank

log = logging.getLogger(__name__)


class Store:
    """One database of collections. Use as a context manager, or call `close()`.

    >>> with Store.open() as store:                       # embedded server by default
    ...     store.ingest("docs", ["notes/"])
    ...     hits = store.search("docs", "how do I reset my password?")
    """

    def __init__(self, url: str, settings: Settings, pool: ConnectionPool) -> None:
        self.url = url
        self.settings = settings
        self._pool = pool
        self._embedders: dict[str, Embedder] = {}
        self._reranker: Reranker | None = None
        self._tokenizers: dict[str, TokenCounter] = {}
        # Models load lazily and fast tokenizers are not safe to share across threads
        # (AsyncStore runs calls in threads): model work holds this lock, database work not.
        self._models = threading.RLock()

    @classmethod
    def open(
        cls,
        url: str | None = None,
        *,
        settings: Settings | None = None,
        upgrade: bool | None = None,
    ) -> Store:
        """Connect to `url`, or PGCONTEXT_DATABASE_URL, or else the embedded server.

        The embedded database is migrated automatically; an external one only with
        `upgrade=True` (otherwise an old schema is an error that says what to run).
        """
        settings = settings or Settings.from_env()
        apply_offline_mode(settings)
        embedded = url is None and settings.database_url is None
        url = url or settings.database_url or embedded_url(settings.home)
        if upgrade or (upgrade is None and embedded):
            migrate.upgrade(url)
        else:
            migrate.check_schema(url)
        return cls(url, settings, open_pool(url))

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- models -------------------------------------------------------------------------

    def embedder(self, model: str | None = None) -> Embedder:
        """The embedder for `model` (default: PGCONTEXT_MODEL), loaded once per Store."""
        with self._models:
            return self._load_embedder(model)

    def _load_embedder(self, model: str | None) -> Embedder:
        if model is not None:
            check_text(model, "model")
        key = model or self.settings.model
        name, location = resolve(key, self.settings.model)
        for known in (key, name, location):
            if known in self._embedders:
                return self._embedders[known]
        log.info("loading embedding model %s from %s", name, location)
        embedder = load_embedder(key, self.settings.model, self.settings.batch_size)
        self.register_embedder(embedder)
        self._embedders[key] = embedder
        return embedder

    def register_embedder(self, embedder: Embedder) -> None:
        """Make a ready embedder (any `Embedder` implementation) known by its name and location."""
        self._embedders[embedder.spec.name] = embedder
        self._embedders[embedder.spec.location] = embedder

    def collection_embedder(self, collection: CollectionInfo, model: str | None = None) -> Embedder:
        """The collection's own model; a different `model` is refused, naming both."""
        if model is not None:
            embedder = self.embedder(model)
        else:
            # By name first: a bundled model's folder moves between machines, its name does not.
            try:
                embedder = self.embedder(collection.model.name)
                catalog.require_model(collection, embedder.spec)
            except (ModelLoadError, ModelMismatchError):
                embedder = self.embedder(collection.model.location)
        catalog.require_model(collection, embedder.spec)
        return embedder

    # -- collections --------------------------------------------------------------------

    def create_collection(
        self, name: str, *, model: str | None = None, settings: CollectionSettings | None = None
    ) -> CollectionInfo:
        """Create `name` bound to `model`; returns the existing one if its settings match."""
        catalog.validate_name(name)
        embedder = self.embedder(model)
        with self._pool.connection() as conn:
            return catalog.create_collection(
                conn, name, embedder.spec, settings or CollectionSettings()
            )

    def collection(self, name: str) -> CollectionInfo:
        with self._pool.connection() as conn:
            return catalog.get_collection(conn, name)

    def collections(self) -> list[CollectionInfo]:
        with self._pool.connection() as conn:
            return catalog.list_collections(conn)

    def set_collection_metadata(self, name: str, patch: Mapping[str, Any]) -> None:
        """Merge `patch` into the collection's metadata (free-form notes, e.g. eval state)."""
        info = self.collection(name)
        with self._pool.connection() as conn:
            catalog.update_metadata(conn, info.id, dict(patch))

    def drop_collection(self, name: str) -> bool:
        with self._pool.connection() as conn:
            return catalog.drop_collection(conn, name)

    # -- ingest -------------------------------------------------------------------------

    def _ingestion(self) -> Ingestion:
        return Ingestion(
            self._pool, self.settings, self.collection_embedder, self.create_collection
        )

    def ingest(
        self,
        collection: str,
        sources: Iterable[str | Path] | Items,
        *,
        model: str | None = None,
        settings: CollectionSettings | None = None,
        fields: JsonlFields | None = None,
        prune: bool = False,
        max_bytes: int = DEFAULT_MAX_BYTES,
        progress: Progress | None = None,
        enqueue_only: bool = False,
        job_documents: int = DEFAULT_JOB_DOCUMENTS,
        worker_options: WorkerOptions | None = None,
    ) -> IngestReport:
        """Ingest paths (files, folders, "-") or SourceDocuments (see Ingestion.ingest)."""
        return self._ingestion().ingest(
            collection,
            sources,
            model=model,
            settings=settings,
            fields=fields,
            prune=prune,
            max_bytes=max_bytes,
            progress=progress,
            enqueue_only=enqueue_only,
            job_documents=job_documents,
            worker_options=worker_options,
        )

    def worker(
        self, options: WorkerOptions | None = None, *, progress: Progress | None = None
    ) -> Worker:
        """A queue worker on this store's pool (see Ingestion.worker)."""
        return self._ingestion().worker(options, progress)

    def work(
        self, options: WorkerOptions | None = None, *, progress: Progress | None = None
    ) -> IngestReport:
        """Run a queue worker in this process until it stops (see `pgcontext worker`)."""
        return self._ingestion().worker(options, progress).run()

    def export(self, collection: str, out: IO[bytes] | str | os.PathLike[str]) -> int:
        """Write the collection's chunks as JSONL (see ingest.exchange); returns the count."""
        return exchange.export(self._pool, collection, out)

    def retry_failed(self, collection: str | None = None) -> int:
        """Put failed ingest jobs back in the queue; returns how many."""
        return self._ingestion().retry_failed(collection)

    # -- retrieve -----------------------------------------------------------------------

    def search(
        self,
        collection: str,
        query: str,
        *,
        k: int = 10,
        filter: Mapping[str, Any] | None = None,
        mode: str = DEFAULT_MODE,
        mmr: float | None = None,
        rerank: bool = False,
        ef_search: int = DEFAULT_EF_SEARCH,
        fusion: Fusion | None = None,
        model: str | None = None,
    ) -> list[Hit]:
        """The k best chunks for `query`: hybrid (dense + BM25) by default, or `mode`
        "dense" or "keyword". `mmr` (lambda, 0..1) trades relevance for diversity;
        `rerank` re-orders the candidates by the cross-encoder's rank fused with their own
        (reciprocal rank fusion). The query is embedded
        with the collection's own model."""
        options = SearchOptions(
            mode=mode,
            mmr_lambda=mmr,
            rerank=rerank,
            ef_search=ef_search,
            fusion=fusion or Fusion(),
        )
        return self.retrieve(collection, query, k=k, filter=filter, options=options, model=model)

    def retrieve(
        self,
        collection: str,
        query: str,
        *,
        k: int = 10,
        filter: Mapping[str, Any] | None = None,
        options: SearchOptions | None = None,
        model: str | None = None,
    ) -> list[Hit]:
        """`search` with every option in one SearchOptions."""
        return self._retrieve(collection, query, k, filter, options or SearchOptions(), model)[0]

    def reranker(self) -> Reranker:
        """The cross-encoder `rerank=True` uses (the bundled one unless one was set)."""
        with self._models:
            if self._reranker is None:
                from pgcontext.retrieve.rerank import CrossEncoder

                self._reranker = CrossEncoder()
            return self._reranker

    def set_reranker(self, reranker: Reranker) -> None:
        self._reranker = reranker

    def _retrieve(
        self,
        collection: str,
        query: str,
        k: int,
        filter: Mapping[str, Any] | None,
        options: SearchOptions,
        model: str | None,
    ) -> tuple[list[Hit], Embedder | None]:
        k, filter_path = _check_request(collection, query, k, filter)
        return self._retrieve_checked(collection, query, k, filter_path, options, model)

    def _retrieve_checked(
        self,
        collection: str,
        query: str,
        k: int,
        filter_path: str | None,
        options: SearchOptions,
        model: str | None,
    ) -> tuple[list[Hit], Embedder | None]:
        """`_retrieve` once `_check_request` has passed."""
        info = self.collection(collection)
        with self._models:
            embedder = self.collection_embedder(info, model) if options.needs_query_vector else None
            reranker = self.reranker() if options.rerank else None
            vector = embedder.embed_query(query) if embedder is not None else None
        with self._pool.connection() as conn:
            hits = retrieve(
                conn, collection, query, vector, k=k, filter_path=filter_path, options=options
            )
        if reranker is not None:
            with self._models:
                hits = apply_rerank(reranker, query, hits, options.rerank_fusion)
        return hits[:k], embedder

    def keyword_search(
        self,
        collection: str,
        query: str,
        *,
        k: int = 10,
        filter: Mapping[str, Any] | None = None,
        k1: float = DEFAULT_K1,
        b: float = DEFAULT_B,
    ) -> list[Hit]:
        """The k chunks with the highest BM25 score for `query` (no model involved)."""
        options = SearchOptions(mode="keyword", k1=k1, b=b)
        return self.retrieve(collection, query, k=k, filter=filter, options=options)

    def hybrid_search(
        self,
        collection: str,
        query: str,
        *,
        k: int = 10,
        filter: Mapping[str, Any] | None = None,
        fusion: Fusion | None = None,
        model: str | None = None,
    ) -> list[Hit]:
        """Dense and BM25 results fused by reciprocal rank fusion (in one SQL statement)."""
        return self.search(collection, query, k=k, filter=filter, fusion=fusion, model=model)

    def first_stage(
        self,
        collection: str,
        query: str,
        vector: Any,
        *,
        k: int = 10,
        options: SearchOptions | None = None,
        filter_path: str | None = None,
    ) -> list[Hit]:
        """The options' first stage alone, with the query already embedded (evaluation,
        vectors made elsewhere): no MMR, no rerank, no model call."""
        k, _ = _check_request(collection, query, k, None)
        with self._pool.connection() as conn:
            return first_stage(
                conn,
                collection,
                query,
                vector,
                k=k,
                filter_path=filter_path,
                options=options or SearchOptions(),
            )

    def search_vector(
        self,
        collection: str,
        vector: Any,
        *,
        k: int = 10,
        filter_path: str | None = None,
        ef_search: int = DEFAULT_EF_SEARCH,
    ) -> list[Hit]:
        catalog.validate_name(collection)
        # Checked here too: a k beyond int4 would find no SQL function (a raw psycopg error).
        k = check_int("k", k, 1, MAX_K)
        ef_search = check_int("ef_search", ef_search, 1, MAX_EF_SEARCH)
        with self._pool.connection() as conn:
            return dense_search(
                conn, collection, vector, k=k, filter_path=filter_path, ef_search=ef_search
            )

    def context(
        self,
        prompt: str,
        collection: str,
        *,
        budget_tokens: int = DEFAULT_BUDGET_TOKENS,
        k: int = DEFAULT_CONTEXT_K,
        filter: Mapping[str, Any] | None = None,
        instructions: str | None = None,
        template: SystemTemplate | str | None = None,
        order: str = "relevance",
        tokenizer: str | TokenCounter | None = None,
        options: SearchOptions | None = None,
    ) -> ContextResult:
        """Chat messages for `prompt`: retrieved passages with citations, within the budget.

        Tokens are counted with `tokenizer` (a local folder, a hub name when hub downloads
        are allowed, or a TokenCounter): by default the bundled chat model's, through its
        chat template. `template` (a string with $passages, optionally $instructions and
        $prompt) shapes the system message; `order="document"` shows the chosen passages
        in document order.
        """
        k, filter_path = _check_request(collection, prompt, k, filter, what="prompt")
        budget_tokens = check_int("budget_tokens", budget_tokens, *BUDGET_RANGE)
        if instructions is not None:
            check_text(instructions, "instructions")
        if isinstance(template, str):
            template = SystemTemplate(template)
        if template is not None:
            check_text(template.text, template.origin)
        check_order(order)  # every argument checked: now the tokenizer, then the search
        counter = self.tokenizer(tokenizer, collection)
        search = options or SearchOptions()
        hits, _ = self._retrieve_checked(collection, prompt, k, filter_path, search, None)
        with self._models:
            return assemble_context(
                prompt,
                hits,
                budget_tokens=budget_tokens,
                count_messages=counter.count_messages,
                instructions=instructions,
                template=template,
                order=order,
                tokenizer=counter.name,
                # Optional on a TokenCounter: a caller's own counter may not name any.
                special_tokens=getattr(counter, "special_tokens", frozenset()),
            )

    def tokenizer(self, spec: str | TokenCounter | None, collection: str) -> TokenCounter:
        """The token counter for budgets (see `context`); loaded once per spec."""
        if spec is not None and not isinstance(spec, str):
            return spec
        with self._models:
            return self._load_tokenizer(spec, collection)

    def _load_tokenizer(self, spec: str | None, collection: str) -> TokenCounter:
        if spec:
            if spec not in self._tokenizers:
                self._tokenizers[spec] = load_tokenizer(spec, allow_hub=self.settings.allow_hub)
            return self._tokenizers[spec]
        if "" in self._tokenizers:
            return self._tokenizers[""]
        info = self.collection(collection)
        fallback = ContentCounter(
            info.model.name, lambda text: self.collection_embedder(info).count_tokens(text)
        )
        counter = default_tokenizer(self.settings.models_dir, fallback)
        if counter is not fallback:  # the fallback depends on the collection: not cached
            self._tokenizers[""] = counter
        return counter

    def chat_model(self, *, local: bool = False) -> ChatModel:
        """The bundled local model, else the endpoint PGCONTEXT_LLM_URL names."""
        return self._chat_loader(local)()

    def _chat_loader(self, local: bool) -> Callable[[], ChatModel]:
        """What loads the chat model; a missing endpoint is an error now, the load later."""
        if local:
            models_dir = self.settings.models_dir

            def load_local() -> ChatModel:
                from pgcontext.llm.local import LocalChat

                return LocalChat(models_dir)

            return load_local
        llm = self.settings.llm
        if llm is None:
            raise LlmError(
                "no chat model: set PGCONTEXT_LLM_URL (and PGCONTEXT_LLM_MODEL) to an "
                "OpenAI-compatible endpoint, or use the bundled local model (--local)"
            )
        return lambda: ChatClient(llm)

    def ask_stream(
        self,
        prompt: str,
        collection: str,
        *,
        model: ChatModel | None = None,
        local: bool = False,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        **context: Any,
    ) -> AnswerStream:
        """Assemble the context (keyword arguments as `context`), then stream the answer."""
        max_tokens = check_int("max_tokens", max_tokens, 1, MAX_ANSWER_TOKENS)
        given = model
        load_chat = self._chat_loader(local) if given is None else lambda: given
        # The context checks every argument before any work; the model loads after it.
        result = self.context(prompt, collection, **context)
        return AnswerStream(load_chat(), result, max_tokens)

    def ask(
        self,
        prompt: str,
        collection: str,
        *,
        model: ChatModel | None = None,
        local: bool = False,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        **context: Any,
    ) -> Answer:
        """The chat model's answer to `prompt` over the collection, with its citations."""
        stream = self.ask_stream(
            prompt, collection, model=model, local=local, max_tokens=max_tokens, **context
        )
        for _ in stream:
            pass
        return stream.answer

    # -- status -------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT name, model, documents, chunks, dimensions FROM pgcontext.collection_status"
                " ORDER BY name"
            ).fetchall()
            queue: dict[str, int] = dict(
                conn.execute(
                    "SELECT status, count(*) FROM pgcontext.ingest_queue GROUP BY status"
                ).fetchall()
            )
            # Errors of jobs still failing or waiting to retry; done jobs keep theirs in the
            # table as history, but they are no longer a problem.
            errors = conn.execute(
                "SELECT q.id, c.name, q.source, q.status, q.attempts, q.last_error"
                " FROM pgcontext.ingest_queue q JOIN pgcontext.collection c"
                " ON c.id = q.collection_id WHERE q.last_error IS NOT NULL AND q.status <> 'done'"
                " ORDER BY q.updated_at DESC LIMIT 10"
            ).fetchall()
        return {
            "collections": [
                {"name": n, "model": m, "documents": d, "chunks": c, "dimensions": dims}
                for n, m, d, c, dims in rows
            ],
            "queue": {
                **{s: int(queue.get(s, 0)) for s in ("queued", "running", "done", "failed")},
                "errors": [
                    {
                        "job": j,
                        "collection": c,
                        "source": s,
                        "status": st,
                        "attempts": a,
                        "error": e,
                    }
                    for j, c, s, st, a, e in errors
                ],
            },
        }


def _check_request(
    collection: str,
    query: str,
    k: int,
    filter: Mapping[str, Any] | None,
    *,
    what: str = "query",
) -> tuple[int, str | None]:
    """Check the arguments every search, context and answer shares, before any model,
    tokenizer or database work: k as a Python int, and the filter compiled to its jsonpath
    (None: no filter)."""
    check_query(query)
    check_text(query, what)
    catalog.validate_name(collection)
    return check_int("k", k, 1, MAX_K), compile_filter(filter)


__all__ = ["Store"]
