"""Filtered HNSW search returns k correct rows; "more like this" from plain SQL."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest

from pgcontext import SearchOptions, SourceDocument, Store
from tests.support.fake_embedder import FakeEmbedder

WORDS = [f"w{i}" for i in range(300)]


def corpus(n: int) -> list[SourceDocument]:
    rng = np.random.default_rng(7)
    return [
        SourceDocument(
            f"d{i:05d}",
            None,
            " ".join(rng.choice(WORDS, size=6)),
            {"bucket": int(i % 100), "even": i % 2 == 0},
        )
        for i in range(n)
    ]


def exact_filtered(db_url: str, vector: np.ndarray, bucket: int, k: int) -> list[str]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT d.source FROM pgcontext.chunk c JOIN pgcontext.document d"
            " ON d.id = c.document_id WHERE c.metadata @@ %s::jsonpath"
            " ORDER BY c.embedding <=> %s::vector, c.id LIMIT %s",
            (f"$.bucket == {bucket}", "[" + ",".join(map(str, vector)) + "]", k),
        ).fetchall()
    return [row[0] for row in rows]


def test_a_one_percent_filter_still_returns_k_correct_rows(store: Store, db_url: str) -> None:
    store.ingest("big", corpus(20_000))
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("ANALYZE pgcontext.chunk")
    fake = FakeEmbedder()
    recalls = []
    for query_number in range(20):
        bucket = query_number * 5
        query = " ".join(WORDS[query_number * 7 : query_number * 7 + 4])
        hits = store.search(
            query,
            collection="big",
            k=10,
            filter={"bucket": bucket},
            options=SearchOptions(mode="dense"),
        )
        assert len(hits) == 10
        assert all(h.metadata["bucket"] == bucket for h in hits)
        truth = exact_filtered(db_url, fake.embed_query(query)[0], bucket, 10)
        recalls.append(len({h.source for h in hits} & set(truth)) / 10)
    assert np.mean(recalls) >= 0.95


def test_more_like_this_in_sql(store: Store, db_url: str) -> None:
    docs = [
        SourceDocument("cats", None, "cats purr and sleep on warm mats", {}),
        SourceDocument("kittens", None, "kittens purr and sleep on warm blankets", {}),
        SourceDocument("tax", None, "file the tax forms before april", {}),
    ]
    store.ingest("m", docs)
    with psycopg.connect(db_url) as conn:
        (chunk,) = conn.execute(
            "SELECT c.id FROM pgcontext.chunk c JOIN pgcontext.document d"
            " ON d.id = c.document_id WHERE d.source = 'cats'"
        ).fetchone() or (None,)
        similar = conn.execute(
            "SELECT source FROM pgcontext.similar_to_chunk(%s, 2)", (chunk,)
        ).fetchall()
        assert [r[0] for r in similar] == ["kittens", "tax"]
        by_document = conn.execute(
            "SELECT source FROM pgcontext.similar_to_document('m', 'cats', 5)"
        ).fetchall()
        assert [r[0] for r in by_document] == ["kittens", "tax"]
        with pytest.raises(psycopg.errors.NoDataFound, match="nope"):
            conn.execute("SELECT * FROM pgcontext.similar_to_document('m', 'nope', 5)")
