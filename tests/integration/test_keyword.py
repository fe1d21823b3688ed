"""BM25 in SQL: the scores match a reference computation, the statistics follow the chunks."""

from __future__ import annotations

import math

import psycopg
import pytest

from pgcontext import CollectionNotFoundError, SearchOptions, SourceDocument, Store

DOCS = {
    "a": "The cat sat on the mat. The cat purred.",
    "b": "A dog chased the cat around the garden.",
    "c": "Databases store rows; PostgreSQL is a database.",
    "d": "Dogs and cats can share a garden peacefully.",
}
KEYWORD = SearchOptions(mode="keyword")


def reference_bm25(db_url: str, query: str, k1: float, b: float) -> dict[str, float]:
    """BM25 from the chunks' own tsvectors, computed in Python."""
    with psycopg.connect(db_url) as conn:
        terms = {
            r[0]
            for r in conn.execute(
                "SELECT lexeme FROM unnest(to_tsvector('english', %s))", (query,)
            ).fetchall()
        }
        rows = conn.execute(
            "SELECT d.source, l.lexeme, cardinality(l.positions)"
            " FROM pgcontext.chunk c JOIN pgcontext.document d ON d.id = c.document_id,"
            " unnest(c.tsv) AS l"
        ).fetchall()
    tf: dict[str, dict[str, int]] = {}
    for source, lexeme, count in rows:
        tf.setdefault(source, {})[lexeme] = count
    n = len(tf)
    avglen = sum(sum(t.values()) for t in tf.values()) / n
    df = {term: sum(1 for t in tf.values() if term in t) for term in terms}
    scores = {}
    for source, counts in tf.items():
        length = sum(counts.values())
        score = sum(
            math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5))
            * counts[t]
            * (k1 + 1)
            / (counts[t] + k1 * (1 - b + b * length / avglen))
            for t in terms
            if t in counts
        )
        if score > 0:
            scores[source] = score
    return scores


def test_bm25_scores_match_the_reference(store: Store, db_url: str) -> None:
    store.ingest("k", [SourceDocument(s, None, t, {}) for s, t in DOCS.items()])
    for query in ["cat garden", "the database rows", "purring cats on mats"]:
        expected = reference_bm25(db_url, query, 0.9, 0.4)
        hits = store.search(query, collection="k", options=KEYWORD, k=10)
        assert {h.source: pytest.approx(h.score) for h in hits} == expected
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    tuned = store.search(
        "cat garden", collection="k", options=SearchOptions(mode="keyword", k1=1.5, b=0.9)
    )
    assert {h.source: pytest.approx(h.score) for h in tuned} == reference_bm25(
        db_url, "cat garden", 1.5, 0.9
    )


def test_statistics_follow_changes_and_deletions(store: Store, db_url: str) -> None:
    store.ingest("k", [SourceDocument(s, None, t, {}) for s, t in DOCS.items()])
    store.ingest("k", [SourceDocument("a", None, "Completely new words about zebras.", {})])
    store.ingest("other", [SourceDocument("x", None, "zebras zebras everywhere", {})])
    store.drop_collection("other")
    with psycopg.connect(db_url) as conn:
        kept = conn.execute(
            "SELECT term, chunks FROM pgcontext.term_stats WHERE chunks > 0 ORDER BY term"
        ).fetchall()
        actual = conn.execute(
            "SELECT l.lexeme, count(*) FROM pgcontext.chunk c, unnest(c.tsv) AS l"
            " GROUP BY 1 ORDER BY 1"
        ).fetchall()
        totals = conn.execute(
            "SELECT s.chunks, s.tokens, (SELECT count(*) FROM pgcontext.chunk),"
            " (SELECT sum(pgcontext.tsvector_length(tsv)) FROM pgcontext.chunk)"
            " FROM pgcontext.collection_stats s"
        ).fetchall()
    assert kept == actual
    assert len(totals) == 1 and totals[0][0] == totals[0][2] and totals[0][1] == totals[0][3]
    assert store.search("zebra", collection="k", options=KEYWORD)[0].source == "a"
    assert all(h.source != "a" for h in store.search("cat", collection="k", options=KEYWORD))


def test_keyword_search_filters_and_errors(store: Store) -> None:
    store.ingest("k", [SourceDocument(s, None, t, {"animal": s in "abd"}) for s, t in DOCS.items()])
    assert {
        h.source
        for h in store.search("garden", collection="k", options=KEYWORD, filter={"animal": True})
    } == {
        "b",
        "d",
    }
    assert store.search("the and of", collection="k", options=KEYWORD) == []  # only stop words
    with pytest.raises(CollectionNotFoundError):
        store.search("cat", collection="nope", options=KEYWORD)
