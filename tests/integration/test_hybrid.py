"""Hybrid search: reciprocal rank fusion of the dense and BM25 lists, in one SQL call."""

from __future__ import annotations

import pytest

from pgcontext import SourceDocument, Store
from pgcontext.retrieve.hybrid import Fusion

DOCS = {
    "a": "The cat sat on the mat. The cat purred.",
    "b": "A dog chased the cat around the garden.",
    "c": "Databases store rows; PostgreSQL is a database.",
    "d": "Dogs and cats can share a garden peacefully.",
    "e": "Completely unrelated text about tax forms.",
}


def expected_rrf(store: Store, query: str, fusion: Fusion, k: int) -> dict[str, float]:
    # Each side contributes max(candidates, k) results, so k results are always possible.
    depth = max(fusion.candidates, k)
    dense = store.search(query, collection="h", k=depth, mode="dense")
    keyword = store.search(query, collection="h", mode="keyword", k=depth)
    scores: dict[str, float] = {}
    for weight, hits in ((fusion.dense_weight, dense), (fusion.keyword_weight, keyword)):
        for rank, hit in enumerate(hits, start=1):
            scores[hit.source] = scores.get(hit.source, 0.0) + weight / (fusion.rrf_k + rank)
    return scores


@pytest.mark.parametrize(
    "fusion", [Fusion(), Fusion(rrf_k=1, dense_weight=0.3, keyword_weight=2.0, candidates=3)]
)
def test_hybrid_scores_are_the_reciprocal_rank_fusion_of_both_lists(
    store: Store, fusion: Fusion
) -> None:
    store.ingest("h", [SourceDocument(s, None, t, {}) for s, t in DOCS.items()])
    query = "cat in the garden"
    expected = expected_rrf(store, query, fusion, k=10)
    hits = store.search(query, collection="h", k=10, fusion=fusion)
    assert {h.source: pytest.approx(h.score) for h in hits} == expected
    top = store.search(query, collection="h", k=2, fusion=fusion)
    best = sorted(expected_rrf(store, query, fusion, k=2).values(), reverse=True)[:2]
    assert [h.score for h in top] == pytest.approx(best)  # ties may come in either order
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_hybrid_honours_k_and_filters(store: Store) -> None:
    store.ingest("h", [SourceDocument(s, None, t, {"pet": s in "abd"}) for s, t in DOCS.items()])
    assert len(store.search("cat", collection="h", k=2)) == 2
    hits = store.search("cat garden", collection="h", k=10, filter={"pet": False})
    assert {h.source for h in hits} <= {"c", "e"}
