"""MMR diversity (pgcontext.mmr in SQL) and the search pipeline's modes, MMR and rerank."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import psycopg
import pytest

from pgcontext import ConfigError, Hit, SearchOptions, SourceDocument, Store
from pgcontext.ingest.sources import PrecomputedChunk
from pgcontext.retrieve.options import RERANK_DEPTH
from tests.support.fake_embedder import FakeEmbedder

DIMS = 16  # the fake embedder's


def unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)


def store_vectors(store: Store, vectors: dict[str, np.ndarray]) -> dict[str, int]:
    """One chunk per document with exactly these embeddings; returns source → chunk id."""
    docs = [
        SourceDocument(s, None, s, {}, (PrecomputedChunk(0, s, 0, len(s), v.tolist()),))
        for s, v in vectors.items()
    ]
    store.ingest("m", docs)
    with store.connection() as conn:
        rows = conn.execute(
            "SELECT d.source, c.id FROM pgcontext.chunk c JOIN pgcontext.document d"
            " ON d.id = c.document_id"
        ).fetchall()
    return dict(rows)


def mmr(conn: psycopg.Connection, query: np.ndarray, ids: list[int], k: int, lam: float) -> list:
    return conn.execute(
        "SELECT chunk_id FROM pgcontext.mmr(%s, %s, %s, %s) ORDER BY rank",
        (query, ids, k, lam),
    ).fetchall()


def reference_mmr(query: np.ndarray, vectors: np.ndarray, k: int, lam: float) -> list[int]:
    """The textbook greedy MMR over cosine similarities (first index wins ties)."""
    relevance = vectors @ query
    similarity = vectors @ vectors.T
    picked: list[int] = []
    while len(picked) < min(k, len(vectors)):
        scores = [
            -np.inf
            if i in picked
            else lam * relevance[i] - (1 - lam) * max((similarity[i, p] for p in picked), default=0)
            for i in range(len(vectors))
        ]
        picked.append(int(np.argmax(scores)))
    return picked


@pytest.mark.parametrize("lam", [0.0, 0.3, 0.5, 0.8, 1.0])
def test_mmr_in_sql_matches_the_reference_greedy_selection(store: Store, lam: float) -> None:
    rng = np.random.default_rng(11)
    vectors = np.array([unit(rng.standard_normal(DIMS)) for _ in range(30)], dtype=np.float32)
    query = unit(rng.standard_normal(DIMS)).astype(np.float32)
    ids = store_vectors(store, {f"v{i:02d}": v for i, v in enumerate(vectors)})
    ordered = [ids[f"v{i:02d}"] for i in range(30)]
    with store.connection() as conn:
        got = [row[0] for row in mmr(conn, query, ordered, 8, lam)]
    assert got == [ordered[i] for i in reference_mmr(query, vectors, 8, lam)]


def test_mmr_skips_a_near_duplicate_that_plain_relevance_keeps(store: Store) -> None:
    e = np.eye(DIMS, dtype=np.float32)
    vectors = {
        "best": unit(e[0] + 0.05 * e[1]),
        "copy of best": unit(e[0] + 0.06 * e[1]),  # nearly the same passage
        "other angle": unit(e[0] + 0.9 * e[2]),
    }
    ids = store_vectors(store, vectors)
    candidates = [ids["best"], ids["copy of best"], ids["other angle"]]
    by_id = {v: k for k, v in ids.items()}
    with store.connection() as conn:
        plain = [by_id[r[0]] for r in mmr(conn, e[0], candidates, 2, 1.0)]
        diverse = [by_id[r[0]] for r in mmr(conn, e[0], candidates, 2, 0.5)]
        rows = conn.execute(
            "SELECT rank, relevance, redundancy FROM pgcontext.mmr(%s, %s, 2, 0.5) ORDER BY rank",
            (e[0], candidates),
        ).fetchall()
    assert plain == ["best", "copy of best"]
    assert diverse == ["best", "other angle"]
    assert rows[0][2] == 0 and rows[1][2] == pytest.approx(
        float(vectors["best"] @ vectors["other angle"]), abs=1e-5
    )
    assert rows[0][1] == pytest.approx(float(vectors["best"] @ e[0]), abs=1e-5)


def test_mmr_input_edges_and_errors(store: Store) -> None:
    ids = store_vectors(store, {"a": np.eye(DIMS, dtype=np.float32)[0]})
    q = np.eye(DIMS, dtype=np.float32)[0]
    with store.connection() as conn:
        assert mmr(conn, q, [], 5, 0.5) == []
        assert mmr(conn, q, [ids["a"], 999_999, ids["a"]], 5, 0.5) == [(ids["a"],)]
    for k, lam, message in [
        (0, 0.5, "k must be between 1 and 1000, not 0"),
        (5, 1.5, "lambda must be between 0 and 1, not 1.5"),
        (5, None, "lambda must be between 0 and 1"),
    ]:
        with (
            store.connection() as conn,
            pytest.raises(psycopg.errors.InvalidParameterValue, match=message),
        ):
            mmr(conn, q, [ids["a"]], k, lam)  # type: ignore[arg-type]
    with (
        store.connection() as conn,
        pytest.raises(psycopg.errors.DataException, match="3 dimensions"),
    ):
        mmr(conn, np.ones(3, dtype=np.float32), [ids["a"]], 5, 0.5)


WORDS = {
    "a": "cats purr on warm mats",
    "b": "cats purr on warm mats all day",
    "c": "dogs bark at the postman",
    "d": "cats and dogs share a garden",
    "e": "tax forms are due in april",
}


def test_search_modes_options_and_clear_errors(store: Store, fake_embedder: FakeEmbedder) -> None:
    store.ingest("w", [SourceDocument(s, None, t, {}) for s, t in WORDS.items()])
    dense_only = SearchOptions(mode="dense")
    keyword_only = SearchOptions(mode="keyword")
    dense = store.search("cats purr", collection="w", k=5, options=dense_only)
    keyword = store.search("cats purr", collection="w", k=5, options=keyword_only)
    hybrid = store.search("cats purr", collection="w", k=5)
    # A ready vector replaces the query's embedding alone: the text is still the keyword side.
    vector = fake_embedder.embed_query("cats purr")
    assert dense == store.search(
        "cats purr", collection="w", k=5, options=dense_only, vector=vector
    )
    assert hybrid == store.search("cats purr", collection="w", k=5, vector=vector)
    assert keyword == store.search(
        "cats purr", collection="w", k=5, options=keyword_only, vector=vector
    )

    diverse = store.search(
        "cats purr", collection="w", k=2, options=SearchOptions(mode="dense", mmr_lambda=0.0)
    )
    assert len(diverse) == 2 and diverse[0] == dense[0]
    assert {h.source for h in diverse} != {"a", "b"}  # the near-copy gives way
    relevance_only = SearchOptions(mode="dense", mmr_lambda=1.0)
    assert store.search("cats purr", collection="w", k=3, options=relevance_only) == dense[:3]
    keyword_mmr = SearchOptions(mode="keyword", mmr_lambda=0.5)
    assert {
        h.source for h in store.search("cats purr", collection="w", k=2, options=keyword_mmr)
    } <= {h.source for h in keyword}

    # Each call in the raises block: SearchOptions refuses a bad setting when it is built.
    for call, message in [
        (
            lambda: store.search("cats", collection="w", options=SearchOptions(mode="fuzzy")),
            "search mode 'fuzzy' is not one of dense, keyword, hybrid",
        ),
        (
            lambda: store.search("cats", collection="w", options=SearchOptions(mmr_lambda=1.2)),
            "MMR lambda must be a finite number between 0 and 1, not 1.2",
        ),
        (
            lambda: store.search("cats", collection="w", k=0),
            "k must be between 1 and 1000, not 0",
        ),
        (
            lambda: store.search("cats", collection="w", options=SearchOptions(ef_search=0)),
            "ef_search must be between 1 and 1000, not 0",
        ),
    ]:
        with pytest.raises(ConfigError, match=message):
            call()


class ReverseReranker:
    """Reverses whatever it is given, and remembers how many candidates that was."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    def rerank(self, query: str, hits: Sequence[Hit], top: int | None = None) -> list[Hit]:
        self.seen.append(len(hits))
        return [replace(h, score=float(i)) for i, h in enumerate(reversed(hits))][:top]


def test_rerank_reorders_the_candidates_then_keeps_k(store: Store) -> None:
    docs = [SourceDocument(f"d{i:02d}", None, f"cats topic{i} note", {}) for i in range(40)]
    store.ingest("r", docs)
    reranker = ReverseReranker()
    store.models.set_reranker(reranker)
    candidates = store.search("cats", collection="r", k=RERANK_DEPTH)
    replace_order = SearchOptions(rerank=True, rerank_fusion="replace")
    replaced = store.search("cats", collection="r", k=3, options=replace_order)
    assert reranker.seen == [RERANK_DEPTH]
    assert [h.chunk_id for h in replaced] == [h.chunk_id for h in reversed(candidates)][:3]

    # By default the reranker's rank is fused with the first stage's: 1/(60+r1) + 1/(60+r2).
    fused = store.search("cats", collection="r", k=4, options=SearchOptions(rerank=True))
    n = RERANK_DEPTH
    order = sorted(range(n), key=lambda i: (-(1 / (61 + i) + 1 / (60 + n - i)), i))
    assert [h.chunk_id for h in fused] == [candidates[i].chunk_id for i in order[:4]]
    assert [h.score for h in fused] == pytest.approx(
        [1 / (61 + i) + 1 / (60 + n - i) for i in order[:4]]
    )
    with pytest.raises(ConfigError, match="rerank fusion 'max' is not one of rrf, replace"):
        SearchOptions(rerank=True, rerank_fusion="max")


def test_a_zero_vector_candidate_neither_wins_nor_poisons_the_rest(store: Store) -> None:
    e = np.eye(DIMS, dtype=np.float32)
    ids = store_vectors(store, {"zero": e[2], "a": e[0], "b": e[1]})
    with store.connection() as conn:
        # Imports refuse an all-zero vector; one can still reach the table (SQL, an embedder).
        conn.execute(
            "UPDATE pgcontext.chunk SET embedding = %s WHERE id = %s",
            (np.zeros(DIMS, dtype=np.float32), ids["zero"]),
        )
        picked = [r[0] for r in mmr(conn, e[0], [ids["zero"], ids["b"], ids["a"]], 3, 0.5)]
    assert picked[0] == ids["a"]  # the most relevant, not the NaN
    assert set(picked) == {ids["zero"], ids["a"], ids["b"]}


class DroppingReranker:
    """Keeps only the first half of what it is given, reversed."""

    def rerank(self, query: str, hits: Sequence[Hit], top: int | None = None) -> list[Hit]:
        return list(reversed(hits[: len(hits) // 2]))


def test_a_reranker_that_drops_hits_still_fuses(store: Store) -> None:
    from pgcontext.retrieve.rerank import fused_rerank

    docs = [SourceDocument(f"d{i}", None, f"cats note{i}", {}) for i in range(6)]
    store.ingest("r", docs)
    hits = store.search("cats", collection="r", k=6)
    fused = fused_rerank(DroppingReranker(), "cats", hits)
    assert sorted(h.chunk_id for h in fused) == sorted(h.chunk_id for h in hits)
    assert {h.chunk_id for h in fused[:3]} == {h.chunk_id for h in hits[:3]}
