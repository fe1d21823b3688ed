"""Hybrid search: dense and BM25 candidates fused by reciprocal rank fusion, in SQL."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from pgcontext.errors import ConfigError
from pgcontext.limits import (
    DEFAULT_B,
    DEFAULT_CANDIDATES,
    DEFAULT_DENSE_WEIGHT,
    DEFAULT_HYBRID_EF_SEARCH,
    DEFAULT_K,
    DEFAULT_K1,
    DEFAULT_KEYWORD_WEIGHT,
    DEFAULT_RRF_K,
    MAX_CANDIDATES,
    MAX_WEIGHT,
    RRF_K_RANGE,
    check_float,
    check_int,
    check_query,
    check_query_vector,
)
from pgcontext.retrieve.hit import Conn, Hit, fetch_hits


@dataclass(frozen=True)
class Fusion:
    """How the two lists are fused: RRF's k, each side's weight, candidates per side."""

    rrf_k: int = DEFAULT_RRF_K
    dense_weight: float = DEFAULT_DENSE_WEIGHT
    keyword_weight: float = DEFAULT_KEYWORD_WEIGHT
    candidates: int = DEFAULT_CANDIDATES

    def __post_init__(self) -> None:
        # Frozen: each checked number is stored back as the plain int or float SQL takes.
        set_field = partial(object.__setattr__, self)
        set_field("rrf_k", check_int("RRF k", self.rrf_k, *RRF_K_RANGE))
        set_field("dense_weight", check_float("dense weight", self.dense_weight, 0.0, MAX_WEIGHT))
        set_field(
            "keyword_weight", check_float("keyword weight", self.keyword_weight, 0.0, MAX_WEIGHT)
        )
        if self.dense_weight == 0 and self.keyword_weight == 0:
            raise ConfigError("the dense and keyword weights are both 0: make one positive")
        set_field("candidates", check_int("hybrid candidates", self.candidates, 1, MAX_CANDIDATES))


def hybrid_search(
    conn: Conn,
    collection: str,
    query: str,
    query_vector: Any,
    *,
    k: int = DEFAULT_K,
    filter_path: str | None = None,
    fusion: Fusion = Fusion(),  # frozen, so one shared default is safe
    ef_search: int = DEFAULT_HYBRID_EF_SEARCH,
    k1: float = DEFAULT_K1,
    b: float = DEFAULT_B,
) -> list[Hit]:
    """The k chunks best by RRF of both lists, best first.

    `ef_search` goes to the dense side (which searches at least `fusion.candidates` and k
    deep in any case), `k1` and `b` to the BM25 side.
    """
    check_query(query)
    vector = check_query_vector(query_vector)
    return fetch_hits(
        conn,
        "SELECT * FROM pgcontext.hybrid_search("
        "%s, %s, %s, %s, %s::jsonpath, %s, %s, %s, %s, %s, %s, %s)",
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
            ef_search,
            k1,
            b,
        ),
    )
