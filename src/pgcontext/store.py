"""`Store`: the Python entry point, one database of collections. A facade: each method hands
its call to the part that does the work (models, search, answering, the ingest run, status)."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import psycopg
from psycopg_pool import ConnectionPool

from pgcontext import status
from pgcontext.answering import Answering, answered
from pgcontext.catalog import CollectionInfo, CollectionSettings
from pgcontext.config import Settings
from pgcontext.context.assemble import ContextResult
from pgcontext.context.template import SystemTemplate
from pgcontext.db.database import open_database
from pgcontext.embed.base import Embedder
from pgcontext.ingest import exchange
from pgcontext.ingest.documents import JsonlFields
from pgcontext.ingest.report import IngestReport, Progress
from pgcontext.ingest.run import Ingestion, Items
from pgcontext.ingest.worker import Worker, WorkerOptions
from pgcontext.limits import (
    DEFAULT_BUDGET_TOKENS,
    DEFAULT_CONTEXT_K,
    DEFAULT_JOB_DOCUMENTS,
    DEFAULT_K,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_TOKENS,
)
from pgcontext.llm.answer import AnswerStream, ChatModel
from pgcontext.llm.tokenizer import TokenCounter
from pgcontext.models import Models
from pgcontext.retrieve.hit import Hit
from pgcontext.retrieve.options import SearchOptions
from pgcontext.retrieve.search import Searcher
from pgcontext.shelf import Shelf


class Store(AbstractContextManager["Store"]):
    """One database of collections: `with Store.open() as store: ...`, or call `close()`."""

    def __init__(self, url: str, settings: Settings, pool: ConnectionPool) -> None:
        self.url, self._settings = url, settings
        self._pool = pool
        self.models = Models(settings)
        self._shelf = Shelf(pool, self.models)
        self._searcher = Searcher(pool, self.models)
        self._answering = Answering(self._searcher, self.models, self.collection)
        self._ingestion = Ingestion(
            pool, settings, self.models.collection_embedder, self._shelf.create
        )

    @classmethod
    def open(
        cls,
        url: str | None = None,
        *,
        settings: Settings | None = None,
        upgrade: bool | None = None,
    ) -> Store:
        """`url`, PGCONTEXT_DATABASE_URL or the embedded server (see db.database)."""
        settings = settings or Settings.from_env()
        url, pool = open_database(url, settings, upgrade)
        return cls(url, settings, pool)

    @property
    def settings(self) -> Settings:
        """What the store was opened with: fixed, its parts hold it (open another to change)."""
        return self._settings

    def close(self) -> None:
        self._pool.close()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def connection(self) -> AbstractContextManager[psycopg.Connection[Any]]:
        """A connection of the store's pool (autocommit, pgvector types known), for tools."""
        return self._pool.connection()

    def embedder(self, model: str | None = None) -> Embedder:
        """The embedder for `model` (default: PGCONTEXT_MODEL), loaded once per Store."""
        return self.models.embedder(model)

    def create_collection(
        self, name: str, *, model: str | None = None, settings: CollectionSettings | None = None
    ) -> CollectionInfo:
        """Create `name` bound to `model`; returns the existing one if its settings match."""
        return self._shelf.create(name, model=model, settings=settings)

    def collection(self, name: str) -> CollectionInfo:
        return self._shelf.get(name)

    def collections(self) -> list[CollectionInfo]:
        return self._shelf.all()

    def set_collection_metadata(self, name: str, patch: Mapping[str, Any]) -> None:
        """Merge `patch` into the collection's metadata (free-form notes, e.g. eval state)."""
        self._shelf.annotate(name, patch)

    def drop_collection(self, name: str) -> bool:
        return self._shelf.drop(name)

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
        return self._ingestion.ingest(
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
        return self._ingestion.worker(options, progress)

    def export(self, collection: str, out: IO[bytes] | str | os.PathLike[str]) -> int:
        """Write the collection's chunks as JSONL (see ingest.exchange); returns the count."""
        return exchange.export(self._pool, collection, out)

    def retry_failed(self, collection: str | None = None) -> int:
        """Put failed ingest jobs back in the queue; returns how many."""
        return self._ingestion.retry_failed(collection)

    def search(
        self,
        query: str,
        *,
        collection: str,
        k: int = DEFAULT_K,
        filter: Mapping[str, Any] | None = None,
        options: SearchOptions | None = None,
        model: str | None = None,
        vector: Any = None,
    ) -> list[Hit]:
        """The k best chunks for `query`: hybrid by default, or as `options` say; see Searcher."""
        return self._searcher.search(query, collection, k, filter, options, model, vector)

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

    def status(self) -> dict[str, Any]:
        """Collections, queue counts and the latest job errors (`pgcontext status --json`)."""
        return status.status(self._pool)


__all__ = ["Store"]
