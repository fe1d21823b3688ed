"""The one search entry point: a query text or a ready vector, checked, searched in SQL,
then diversified (MMR) and reranked as SearchOptions say."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from pgcontext import catalog
from pgcontext.arguments import check_text
from pgcontext.errors import ConfigError, QueryError
from pgcontext.limits import MAX_K, check_int, check_query
from pgcontext.models import Models
from pgcontext.retrieve.filters import compile_filter
from pgcontext.retrieve.hit import Hit
from pgcontext.retrieve.options import SearchOptions
from pgcontext.retrieve.pipeline import retrieve
from pgcontext.retrieve.rerank import apply_rerank


def check_request(
    query: str, collection: str, k: int, filter: Mapping[str, Any] | None, *, what: str = "query"
) -> tuple[int, str | None]:
    """Check what every search, context and answer shares, before any model, tokenizer or
    database work: k as a Python int, and the filter compiled to its jsonpath (None: none)."""
    check_query(query)
    check_text(query, what)
    catalog.validate_name(collection)
    return check_int("k", k, 1, MAX_K), compile_filter(filter)


class Searcher:
    """Searches over one pool, with the models of one Store."""

    def __init__(self, pool: ConnectionPool, models: Models) -> None:
        self._pool = pool
        self._models = models

    def search(
        self,
        query: str,
        collection: str,
        k: int,
        filter: Mapping[str, Any] | None,
        options: SearchOptions | None,
        model: str | None = None,
        vector: Any = None,
    ) -> list[Hit]:
        """The k best chunks for `query` in `collection`, by `options` (default: hybrid).

        The query is embedded with the collection's own model (`model`, if given, must be
        that model); a ready `vector` replaces the embedding alone: BM25 and the reranker
        still read `query`."""
        k, filter_path = check_request(query, collection, k, filter)
        options = options or SearchOptions()
        return self.checked(query, collection, k, filter_path, options, model, vector)

    def checked(
        self,
        query: str,
        collection: str,
        k: int,
        filter_path: str | None,
        options: SearchOptions,
        model: str | None = None,
        vector: Any = None,
    ) -> list[Hit]:
        """`search` once `check_request` has passed. A ready `vector` replaces the query's
        embedding alone: `query` is still what keyword search and the reranker read."""
        given = vector is not None  # made elsewhere: its size is not checked against ours
        if given and model is not None:
            raise ConfigError("give a model or a ready vector, not both", parameter="vector")
        info = None
        if not given:  # an unknown collection is named before any model loads
            with self._pool.connection() as conn:
                info = catalog.get_collection(conn, collection)
        with self._models.lock:
            if info is not None and options.needs_query_vector:
                vector = self._models.collection_embedder(info, model).embed_query(query)
            reranker = self._models.reranker() if options.rerank else None
        with self._pool.connection() as conn:
            try:
                hits = retrieve(
                    conn, collection, query, vector, k=k, filter_path=filter_path, options=options
                )
            except psycopg.errors.DataException as exc:
                if not given:
                    raise
                # A vector made elsewhere: the SQL function names what is wrong with it
                # (its dimensions), the caller gets it as the query error it is.
                reason = exc.diag.message_primary or str(exc)
                raise QueryError(f"the given vector: {reason}", parameter="vector") from exc
        if reranker is not None:
            with self._models.lock:
                hits = apply_rerank(reranker, query, hits, options.rerank_fusion)
        return hits[:k]
