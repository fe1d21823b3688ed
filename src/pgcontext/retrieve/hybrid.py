"""Hybrid search: dense and BM25 candidates fused by reciprocal rank fusion, in SQL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
from psycopg.rows import dict_row

from pgcontext.retrieve.dense import hits_from_rows
from pgcontext.retrieve.hit import Hit

Conn = psycopg.Connection[Any]


@dataclass(frozen=True)
class Fusion:
    """How the two lists are fused: RRF's k, each side's weight, candidates per side."""

    rrf_k: int = 60
    dense_weight: float = 1.0
    keyword_weight: float = 1.0
    candidates: int = 100


def hybrid_search(
    conn: Conn,
    collection: str,
    query: str,
    query_vector: Any,
    *,
    k: int = 10,
    filter_path: str | None = None,
    fusion: Fusion = Fusion(),  # frozen, so one shared default is safe
) -> list[Hit]:
    vector = np.asarray(query_vector, dtype=np.float32).reshape(-1)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT * FROM pgcontext.hybrid_search(%s, %s, %s, %s, %s::jsonpath, %s, %s, %s, %s)",
            (
                collection,
                query,
                vector,
                k,
                filter_path,
                fusion.candidates,
                fusion.rrf_k,
                fusion.dense_weight,
                fusion.keyword_weight,
            ),
        ).fetchall()
    return hits_from_rows(rows)
