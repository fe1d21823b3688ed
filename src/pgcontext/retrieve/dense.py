"""Dense search: a thin call of the SQL function pgcontext.search, so SQL and Python agree."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from pgcontext.limits import check_query_vector
from pgcontext.retrieve.hit import Hit

Conn = psycopg.Connection[Any]

DEFAULT_EF_SEARCH = 40


def dense_search(
    conn: Conn,
    collection: str,
    query_vector: Any,
    *,
    k: int = 10,
    filter_path: str | None = None,
    ef_search: int = DEFAULT_EF_SEARCH,
) -> list[Hit]:
    """The k chunks nearest to `query_vector` (cosine), best first."""
    vector = check_query_vector(query_vector)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT * FROM pgcontext.search(%s, %s, %s, %s::jsonpath, %s)",
            (collection, vector, k, filter_path, ef_search),
        ).fetchall()
    return hits_from_rows(rows)


def hits_from_rows(rows: list[dict[str, Any]]) -> list[Hit]:
    """Rows of any pgcontext search function (they share one result shape) as Hits."""
    return [
        Hit(
            chunk_id=row["chunk_id"],
            document_id=row["document_id"],
            source=row["source"],
            title=row["title"],
            score=float(row["score"]),
            text=row["text"],
            position=row["position"],
            char_start=row["char_start"],
            char_end=row["char_end"],
            metadata=row["metadata"],
        )
        for row in rows
    ]
