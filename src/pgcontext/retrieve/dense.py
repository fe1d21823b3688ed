"""Dense search: a thin call of the SQL function pgcontext.search, so SQL and Python agree."""

from __future__ import annotations

from typing import Any

from pgcontext.limits import DEFAULT_EF_SEARCH, DEFAULT_K, check_query_vector
from pgcontext.retrieve.hit import Conn, Hit, fetch_hits


def dense_search(
    conn: Conn,
    collection: str,
    query_vector: Any,
    *,
    k: int = DEFAULT_K,
    filter_path: str | None = None,
    ef_search: int = DEFAULT_EF_SEARCH,
) -> list[Hit]:
    """The k chunks nearest to `query_vector` (cosine), best first."""
    vector = check_query_vector(query_vector)
    return fetch_hits(
        conn,
        "SELECT * FROM pgcontext.search(%s, %s, %s, %s::jsonpath, %s)",
        (collection, vector, k, filter_path, ef_search),
    )
