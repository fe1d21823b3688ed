"""Maximal marginal relevance over search candidates (pgcontext.mmr, in SQL)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pgcontext.retrieve.hit import Conn, Hit


def mmr_select(
    conn: Conn, query_vector: Any, hits: Sequence[Hit], *, k: int, diversity_lambda: float
) -> list[Hit]:
    """k of `hits`, picked for relevance to the query and difference from each other.

    The hits keep their first-stage scores; only which ones and their order change.
    """
    if not hits:
        return []
    vector = np.asarray(query_vector, dtype=np.float32).reshape(-1)
    rows = conn.execute(
        "SELECT chunk_id FROM pgcontext.mmr(%s, %s, %s, %s) ORDER BY rank",
        (vector, [hit.chunk_id for hit in hits], k, diversity_lambda),
    ).fetchall()
    by_id = {hit.chunk_id: hit for hit in hits}
    return [by_id[row[0]] for row in rows]
