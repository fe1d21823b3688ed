"""One search in SQL, as SearchOptions describe it: the first stage, then MMR if asked."""

from __future__ import annotations

from typing import Any

import psycopg

from pgcontext.retrieve.dense import dense_search
from pgcontext.retrieve.hit import Hit
from pgcontext.retrieve.hybrid import hybrid_search
from pgcontext.retrieve.keyword import keyword_search
from pgcontext.retrieve.mmr import mmr_select
from pgcontext.retrieve.options import SearchOptions

Conn = psycopg.Connection[Any]


def retrieve(
    conn: Conn,
    collection: str,
    query: str,
    vector: Any,
    *,
    k: int,
    filter_path: str | None,
    options: SearchOptions,
) -> list[Hit]:
    """Candidates for the later stages: k hits, or MMR's pick of k, or the rerank depth.
    Dense, hybrid and MMR need the query `vector`; keyword and hybrid search `query`."""
    depth = options.candidates(k)
    if options.mode == "keyword":
        hits = keyword_search(
            conn, collection, query, k=depth, filter_path=filter_path, k1=options.k1, b=options.b
        )
    elif vector is None:
        raise ValueError(f"{options.mode} search needs the query vector")
    elif options.mode == "dense":
        hits = dense_search(
            conn,
            collection,
            vector,
            k=depth,
            filter_path=filter_path,
            ef_search=options.hnsw_breadth,
        )
    else:
        hits = hybrid_search(
            conn,
            collection,
            query,
            vector,
            k=depth,
            filter_path=filter_path,
            fusion=options.fusion,
            ef_search=options.hnsw_breadth,
            k1=options.k1,
            b=options.b,
        )
    if options.mmr_lambda is not None:
        hits = mmr_select(conn, vector, hits, k=k, diversity_lambda=options.mmr_lambda)
    return hits
