"""Hybrid search: reciprocal rank fusion of the dense and BM25 lists, in one SQL call."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest
from pgvector.psycopg import register_vector

from pgcontext import SearchOptions, SourceDocument, Store
from pgcontext.limits import DEFAULT_B, DEFAULT_K1
from pgcontext.retrieve.dense import dense_search
from pgcontext.retrieve.hit import Hit
from pgcontext.retrieve.hybrid import Fusion, hybrid_search
from pgcontext.retrieve.keyword import keyword_search

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
    dense = store.search(query, collection="h", k=depth, options=SearchOptions(mode="dense"))
    keyword = store.search(query, collection="h", options=SearchOptions(mode="keyword"), k=depth)
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
    hits = store.search(query, collection="h", k=10, options=SearchOptions(fusion=fusion))
    assert {h.source: pytest.approx(h.score) for h in hits} == expected
    top = store.search(query, collection="h", k=2, options=SearchOptions(fusion=fusion))
    best = sorted(expected_rrf(store, query, fusion, k=2).values(), reverse=True)[:2]
    assert [h.score for h in top] == pytest.approx(best)  # ties may come in either order
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_hybrid_honours_k_and_filters(store: Store) -> None:
    store.ingest("h", [SourceDocument(s, None, t, {"pet": s in "abd"}) for s, t in DOCS.items()])
    assert len(store.search("cat", collection="h", k=2)) == 2
    hits = store.search("cat garden", collection="h", k=10, filter={"pet": False})
    assert {h.source for h in hits} <= {"c", "e"}


# BM25's k1 and b decide between these two: "short" wins with length normalisation (b near
# 1), "long" (more occurrences of "cat", in a longer text) without it.
BM25_DOCS = {
    "short": "A cat.",
    "long": "Cat and cat, a cat again: " + " ".join(f"filler{i}" for i in range(40)),
    "other": "Databases store rows; PostgreSQL is a database.",
}


def sources(hits: list[Hit]) -> list[str]:
    return [hit.source for hit in hits]


def test_hybrid_passes_k1_and_b_to_its_keyword_side(store: Store, db_url: str) -> None:
    store.ingest("h", [SourceDocument(s, None, t, {}) for s, t in BM25_DOCS.items()])
    keyword_only = Fusion(dense_weight=0, keyword_weight=1)  # RRF order = BM25 order
    orders = []
    with psycopg.connect(db_url) as conn:
        register_vector(conn)
        for k1, b in [(DEFAULT_K1, DEFAULT_B), (2.0, 0.0), (2.0, 1.0)]:
            bm25 = keyword_search(conn, "h", "cat", k=2, k1=k1, b=b)
            fused = hybrid_search(
                conn, "h", "cat", np.ones(16), k=2, fusion=keyword_only, k1=k1, b=b
            )
            assert sources(fused) == sources(bm25)
            # Store.search, hybrid by default, passes its options' k1 and b down to SQL.
            options = SearchOptions(fusion=keyword_only, k1=k1, b=b)
            assert sources(store.search("cat", collection="h", k=2, options=options)) == sources(
                bm25
            )
            orders.append(sources(bm25))
    assert orders[1] != orders[2]  # the fixture is one where k1 and b matter
    assert orders[1] == ["long", "short"]


def random_collection(store: Store, db_url: str, n: int, dims: int = 16) -> None:
    """Collection "r": n one-chunk documents with random vectors, in its HNSW index."""
    store.create_collection("r")
    with psycopg.connect(db_url) as conn:
        conn.execute("SELECT setseed(0.25)")
        conn.execute(
            "INSERT INTO pgcontext.document (collection_id, source, content_hash, char_count)"
            " SELECT c.id, 'doc' || i, 'h', 1 FROM pgcontext.collection c,"
            " generate_series(1, %s) i WHERE c.name = 'r'",
            (n,),
        )
        conn.execute(
            "INSERT INTO pgcontext.chunk (collection_id, document_id, position, text, text_hash,"
            " token_count, char_start, char_end, ts_config, embedding)"
            " SELECT d.collection_id, d.id, 0, 'x', 'h', 1, 0, 1, 'english',"
            "  ARRAY(SELECT random() - 0.5 FROM generate_series(1, %s) WHERE d.id > 0)::vector"
            " FROM pgcontext.document d",
            (dims,),
        )
        conn.execute("ANALYZE pgcontext.chunk")  # so the planner takes the HNSW index


def test_hybrid_passes_ef_search_to_its_dense_side(store: Store, db_url: str) -> None:
    random_collection(store, db_url, 3000)
    dense_only = Fusion(dense_weight=1, keyword_weight=0, candidates=10)
    rng = np.random.default_rng(7)
    differs = 0
    with psycopg.connect(db_url) as conn:
        register_vector(conn)
        for _ in range(20):
            query = rng.standard_normal(16)
            by_ef = {}
            for ef in (10, 400):
                dense = dense_search(conn, "r", query, k=10, ef_search=ef)
                # "nothing" matches no chunk: the dense side alone decides.
                fused = hybrid_search(
                    conn, "r", "nothing", query, k=10, fusion=dense_only, ef_search=ef
                )
                assert [h.chunk_id for h in fused] == [h.chunk_id for h in dense]
                # Store.search, hybrid by default, passes its options' ef_search down to SQL.
                options = SearchOptions(fusion=dense_only, ef_search=ef)
                via_store = store.search(
                    "nothing", collection="r", k=10, vector=query, options=options
                )
                assert [h.chunk_id for h in via_store] == [h.chunk_id for h in dense]
                by_ef[ef] = [h.chunk_id for h in dense]
            differs += by_ef[10] != by_ef[400]
    assert differs > 0  # at ef_search 10 the index misses some of the exact nearest
