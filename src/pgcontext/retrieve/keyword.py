"""Keyword search: BM25 scored in SQL (pgcontext.keyword_search) over the GIN index."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from pgcontext.limits import check_query
from pgcontext.retrieve.dense import hits_from_rows
from pgcontext.retrieve.hit import Hit

Conn = psycopg.Connection[Any]

DEFAULT_K1 = 0.9  # Anserini's BM25 defaults, the usual BEIR baseline
DEFAULT_B = 0.4


def keyword_search(
    conn: Conn,
    collection: str,
    query: str,
    *,
    k: int = 10,
    filter_path: str | None = None,
    k1: float = DEFAULT_K1,
    b: float = DEFAULT_B,
) -> list[Hit]:
    """The k chunks with the highest BM25 score for `query`, best first."""
    check_query(query)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT * FROM pgcontext.keyword_search(%s, %s, %s, %s::jsonpath, %s, %s)",
            (collection, query, k, filter_path, k1, b),
        ).fetchall()
    return hits_from_rows(rows)
