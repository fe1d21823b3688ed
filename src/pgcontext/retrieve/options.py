"""How a search runs: first-stage mode, then optional MMR diversity and cross-encoder rerank."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

from pgcontext.errors import ConfigError
from pgcontext.limits import (
    B_RANGE,
    DEFAULT_B,
    DEFAULT_EF_SEARCH,
    DEFAULT_HYBRID_EF_SEARCH,
    DEFAULT_K1,
    K1_RANGE,
    MAX_EF_SEARCH,
    MAX_K,
    check_float,
    check_int,
)
from pgcontext.retrieve.hybrid import Fusion
from pgcontext.retrieve.rerank import RERANK_FUSIONS

MODES = ("dense", "keyword", "hybrid")
# Hybrid beats either side alone on SciFact and Cranfield (README, "Retrieval quality").
DEFAULT_MODE = "hybrid"
RERANK_DEPTH = 30  # candidates the cross-encoder re-scores: ~18 pairs/s on two cores
MMR_FETCH_FACTOR = 4  # MMR picks k out of 4k candidates


@dataclass(frozen=True)
class SearchOptions:
    """Everything about a search except the query, the collection, k and the filter."""

    mode: str = DEFAULT_MODE
    # HNSW breadth: None is the mode's own default (the SQL functions' DEFAULTs): 40 for
    # dense, 100 for hybrid's dense side (which searches at least `fusion.candidates` deep).
    ef_search: int | None = None
    fusion: Fusion = field(default_factory=Fusion)
    k1: float = DEFAULT_K1
    b: float = DEFAULT_B
    mmr_lambda: float | None = None  # None: no MMR; 1.0 relevance only, 0.0 diversity only
    rerank: bool = False
    rerank_depth: int = RERANK_DEPTH
    # "rrf": the cross-encoder's rank fused with the first stage's (better on SciFact and
    # Cranfield); "replace": the cross-encoder's order alone.
    rerank_fusion: str = "rrf"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(
                f"search mode {self.mode!r} is not one of {', '.join(MODES)}", parameter="mode"
            )
        # Frozen: each checked number is stored back as the plain int or float SQL takes.
        set_field = partial(object.__setattr__, self)
        if self.mmr_lambda is not None:
            set_field(
                "mmr_lambda",
                check_float("MMR lambda", self.mmr_lambda, 0.0, 1.0, parameter="mmr_lambda"),
            )
        if self.ef_search is not None:
            set_field("ef_search", check_int("ef_search", self.ef_search, 1, MAX_EF_SEARCH))
        set_field("k1", check_float("BM25 k1", self.k1, *K1_RANGE, parameter="k1"))
        set_field("b", check_float("BM25 b", self.b, *B_RANGE, parameter="b"))
        if self.rerank_fusion not in RERANK_FUSIONS:
            raise ConfigError(
                f"rerank fusion {self.rerank_fusion!r} is not one of {', '.join(RERANK_FUSIONS)}"
            )
        set_field(
            "rerank_depth",
            check_int("rerank depth", self.rerank_depth, 1, MAX_K, parameter="rerank_depth"),
        )

    @property
    def hnsw_breadth(self) -> int:
        """`ef_search`, or the mode's default."""
        if self.ef_search is not None:
            return self.ef_search
        return DEFAULT_HYBRID_EF_SEARCH if self.mode == "hybrid" else DEFAULT_EF_SEARCH

    @property
    def needs_query_vector(self) -> bool:
        return self.mode != "keyword" or self.mmr_lambda is not None

    def candidates(self, k: int) -> int:
        """How many first-stage hits the later stages choose from."""
        depth = k
        if self.mmr_lambda is not None:
            depth = max(depth, MMR_FETCH_FACTOR * k)
        if self.rerank:
            depth = max(depth, self.rerank_depth)
        return min(depth, MAX_K)
