"""Keyword search: BM25 scored in SQL (pgcontext.keyword_search) over the GIN index."""

from __future__ import annotations

from pgcontext.limits import DEFAULT_B, DEFAULT_K, DEFAULT_K1, check_query
from pgcontext.retrieve.hit import Conn, Hit, fetch_hits


def keyword_search(
    conn: Conn,
    collection: str,
    query: str,
    *,
    k: int = DEFAULT_K,
    filter_path: str | None = None,
    k1: float = DEFAULT_K1,
    b: float = DEFAULT_B,
) -> list[Hit]:
    """The k chunks with the highest BM25 score for `query`, best first."""
    check_query(query)
    return fetch_hits(
        conn,
        "SELECT * FROM pgcontext.keyword_search(%s, %s, %s, %s::jsonpath, %s, %s)",
        (collection, query, k, filter_path, k1, b),
    )
