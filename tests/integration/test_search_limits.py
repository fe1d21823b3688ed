"""Search parameters out of range are clear errors at every face, with the same limits.

The SQL functions refuse NULL, NaN and out-of-range parameters with an exception that names
the parameter; the Python API checks first (pgcontext.limits) with the same numbers,
so neither gives NaN scores, a raw DivisionByZero or a stack-depth error.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import psycopg
import pytest

from pgcontext import ConfigError, FilterError, QueryError, SourceDocument, Store
from pgcontext.limits import (
    B_RANGE,
    K1_RANGE,
    MAX_CANDIDATES,
    MAX_QUERY_CHARS,
    MAX_WEIGHT,
    RRF_K_RANGE,
)
from pgcontext.retrieve.hybrid import Fusion
from pgcontext.retrieve.options import SearchOptions

DOCS = {
    "a": "The cat sat on the mat. The cat purred.",
    "b": "A dog chased the cat around the garden.",
    "c": "Databases store rows; PostgreSQL is a database.",
}
NAN = float("nan")
# The worst case the query limit allows: one term per two characters.
WORST_QUERY = ("ab," * MAX_QUERY_CHARS)[:MAX_QUERY_CHARS]


@pytest.fixture
def conn(store: Store, db_url: str) -> Iterator[psycopg.Connection[Any]]:
    store.ingest("c", [SourceDocument(s, None, t, {}) for s, t in DOCS.items()])
    with psycopg.connect(db_url, autocommit=True) as connection:
        yield connection


SOME_CHUNK = "(SELECT min(id) FROM pgcontext.chunk)"
BAD_K = [(k, k) for k in ("-1", "0", "1001", "2147483647")] + [("NULL", "<NULL>")]


def vector(values: list[float] | None = None) -> str:
    return str(values if values is not None else [1.0] + [0.0] * 15)


@pytest.mark.parametrize(
    ("query", "params", "message"),
    [
        ("SELECT * FROM pgcontext.search('c', NULL, 10)", (), "query_embedding is NULL"),
        (
            "SELECT * FROM pgcontext.search('c', %s::vector, 10)",
            (vector([0.0] * 16),),
            "query_embedding is all zeros",
        ),
        ("SELECT * FROM pgcontext.keyword_search('c', NULL, 10)", (), "query is NULL"),
        (
            "SELECT * FROM pgcontext.keyword_search('c', %s, 10)",
            ("x" * (MAX_QUERY_CHARS + 1),),
            "the query has 10001 characters, more than 10000",
        ),
        (
            "SELECT * FROM pgcontext.keyword_search('c', 'cat', 10, NULL, -1, 5)",
            (),
            "k1 must be between 0 and 100, not -1",
        ),
        (
            "SELECT * FROM pgcontext.keyword_search('c', 'cat', 10, NULL, 'NaN', 0.4)",
            (),
            "k1 must be between 0 and 100, not NaN",
        ),
        (
            "SELECT * FROM pgcontext.keyword_search('c', 'cat', 10, NULL, 0.9, 5)",
            (),
            "b must be between 0 and 1, not 5",
        ),
        (
            "SELECT * FROM pgcontext.keyword_search('c', 'cat', 10, NULL, 0.9, NULL)",
            (),
            "b must be between 0 and 1, not <NULL>",
        ),
        (
            "SELECT * FROM pgcontext.hybrid_search('c', 'cat', %s::vector, 10, NULL, 100, -1)",
            (vector(),),
            "rrf_k must be between 1 and 100000, not -1",
        ),
        (
            "SELECT * FROM pgcontext.hybrid_search('c', 'cat', %s::vector, 10, NULL, 100, NULL)",
            (vector(),),
            "rrf_k must be between 1 and 100000",
        ),
        (
            "SELECT * FROM pgcontext.hybrid_search('c', 'cat', %s::vector, 10, NULL, 100, 60,"
            " 'NaN')",
            (vector(),),
            "dense_weight must be between 0 and 1e6, not NaN",
        ),
        (
            "SELECT * FROM pgcontext.hybrid_search('c', 'cat', %s::vector, 10, NULL, 100, 60,"
            " 1, -1)",
            (vector(),),
            "keyword_weight must be between 0 and 1e6, not -1",
        ),
        (
            "SELECT * FROM pgcontext.hybrid_search('c', 'cat', %s::vector, 10, NULL, 100, 60,"
            " 0, 0)",
            (vector(),),
            "dense_weight and keyword_weight are both 0",
        ),
        (
            "SELECT * FROM pgcontext.hybrid_search('c', 'cat', %s::vector, 10, NULL, 0)",
            (vector(),),
            "candidates must be between 1 and 1000, not 0",
        ),
        (
            "SELECT * FROM pgcontext.hybrid_search('c', 'cat', NULL, 10)",
            (),
            "query_embedding is NULL",
        ),
        ("SELECT * FROM pgcontext.mmr(NULL, ARRAY[1::bigint], 1)", (), "query_embedding is NULL"),
        (
            "SELECT * FROM pgcontext.mmr(%s::vector, ARRAY(SELECT id FROM pgcontext.chunk), 1)",
            (vector([0.0] * 16),),
            "pgcontext.mmr: query_embedding is all zeros",
        ),
        *[
            (
                f"SELECT * FROM pgcontext.similar_to_chunk({SOME_CHUNK}, {k})",
                (),
                rf"pgcontext.similar_to_chunk: k must be between 1 and 1000, not {shown}",
            )
            for k, shown in BAD_K
        ],
        *[
            (
                f"SELECT * FROM pgcontext.similar_to_document('c', 'a', {k})",
                (),
                rf"pgcontext.similar_to_document: k must be between 1 and 1000, not {shown}",
            )
            for k, shown in BAD_K
        ],
    ],
)
def test_sql_functions_refuse_bad_parameters(
    conn: psycopg.Connection[Any], query: str, params: tuple[Any, ...], message: str
) -> None:
    with pytest.raises(psycopg.Error, match=message):
        conn.execute(query, params).fetchall()


KEYWORD = "SELECT score FROM pgcontext.keyword_search('c', %s, 10, NULL, %s, %s)"
HYBRID = (
    "SELECT score FROM pgcontext.hybrid_search('c', 'cat', %s::vector, 10, NULL, %s, %s, %s, %s)"
)


def keyword(query: str = "cat", k1: float = 0.9, b: float = 0.4) -> tuple[str, tuple[Any, ...]]:
    return KEYWORD, (query, k1, b)


def hybrid(
    candidates: int = 100, rrf_k: int = 60, dense: float = 1, keyword: float = 1
) -> tuple[str, tuple[Any, ...]]:
    return HYBRID, (vector(), candidates, rrf_k, dense, keyword)


# The Python limits, at the edge and just beyond: the SQL functions agree on both sides.
EDGES = [
    (keyword(query="cat " + WORST_QUERY[4:]), keyword(query="cat " + WORST_QUERY[3:])),
    (keyword(k1=K1_RANGE[0]), keyword(k1=K1_RANGE[0] - 0.01)),
    (keyword(k1=K1_RANGE[1]), keyword(k1=K1_RANGE[1] + 0.01)),
    (keyword(b=B_RANGE[0]), keyword(b=B_RANGE[0] - 0.01)),
    (keyword(b=B_RANGE[1]), keyword(b=B_RANGE[1] + 0.01)),
    (hybrid(candidates=MAX_CANDIDATES), hybrid(candidates=MAX_CANDIDATES + 1)),
    (hybrid(rrf_k=RRF_K_RANGE[0]), hybrid(rrf_k=RRF_K_RANGE[0] - 1)),
    (hybrid(rrf_k=RRF_K_RANGE[1]), hybrid(rrf_k=RRF_K_RANGE[1] + 1)),
    (hybrid(dense=0, keyword=MAX_WEIGHT), hybrid(dense=0, keyword=MAX_WEIGHT * 1.01)),
    (hybrid(dense=0), hybrid(dense=-0.01)),
]


def test_similar_accepts_the_edges_of_k(conn: psycopg.Connection[Any]) -> None:
    for k, expected in [(1, 1), (1000, 2)]:  # the other two documents' chunks
        chunk = conn.execute(f"SELECT * FROM pgcontext.similar_to_chunk({SOME_CHUNK}, %s)", (k,))
        assert len(chunk.fetchall()) == expected
        document = conn.execute("SELECT * FROM pgcontext.similar_to_document('c', 'a', %s)", (k,))
        assert len(document.fetchall()) == expected


@pytest.mark.parametrize(("inside", "outside"), EDGES)
def test_sql_and_python_limits_agree(
    conn: psycopg.Connection[Any],
    inside: tuple[str, tuple[Any, ...]],
    outside: tuple[str, tuple[Any, ...]],
) -> None:
    rows = conn.execute(*inside).fetchall()
    assert rows and all(math.isfinite(score) for (score,) in rows)
    with pytest.raises(psycopg.errors.DatabaseError, match=r"must be|more than"):
        conn.execute(*outside).fetchall()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Fusion(rrf_k=-1), "RRF k must be between 1 and 100000, not -1"),
        (lambda: Fusion(rrf_k=0), "RRF k must be between 1 and 100000, not 0"),
        (lambda: Fusion(rrf_k=2**40), "RRF k must be between 1 and 100000, not 1099511627776"),
        (lambda: Fusion(rrf_k=1.5), "RRF k must be an integer, not 1.5"),
        (lambda: Fusion(dense_weight=NAN), "dense weight must be a finite number .* not nan"),
        (lambda: Fusion(keyword_weight=-1), "keyword weight must be a finite number"),
        (lambda: Fusion(dense_weight=0, keyword_weight=0), "both 0"),
        (lambda: Fusion(candidates=0), "hybrid candidates must be between 1 and 1000"),
        (lambda: SearchOptions(k1=-1), "BM25 k1 must be a finite number between 0 and 100"),
        (lambda: SearchOptions(k1=NAN), "BM25 k1 must be a finite number .* not nan"),
        (lambda: SearchOptions(b=5), "BM25 b must be a finite number between 0 and 1, not 5"),
        (lambda: SearchOptions(b=NAN), "BM25 b must be"),
        (lambda: SearchOptions(ef_search=NAN), "ef_search must be an integer"),
    ],
)
def test_python_options_refuse_bad_parameters(make: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make()


def test_python_api_refuses_before_sql(store: Store) -> None:
    store.ingest("c", [SourceDocument(s, None, t, {}) for s, t in DOCS.items()])
    with pytest.raises(ConfigError, match="BM25 k1"):
        store.search("cat", collection="c", options=SearchOptions(mode="keyword", k1=-1, b=5))
    with pytest.raises(ConfigError, match="k must be an integer, not nan"):
        store.search("cat", collection="c", k=NAN)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="budget_tokens must be an integer, not nan"):
        store.context("cat", collection="c", budget_tokens=NAN)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="budget_tokens must be between 16 and 1000000"):
        store.context("cat", collection="c", budget_tokens=-5)
    with pytest.raises(QueryError, match="the query vector is all zeros"):
        store.search(
            "cat", collection="c", options=SearchOptions(mode="dense"), vector=np.zeros(16)
        )
    with pytest.raises(ConfigError, match="k must be between 1 and 1000, not 0"):
        store.search("cat", collection="c", vector=np.ones(16), k=0)
    with pytest.raises(QueryError, match="NaN or infinite"):
        store.search("cat", collection="c", vector=np.full(16, np.nan))
    with pytest.raises(QueryError, match="the query vector is all zeros"):
        store.search("cat", collection="c", options=SearchOptions(mode="dense"), vector=[0.0] * 16)


@pytest.mark.parametrize("mode", ["keyword", "hybrid", "dense"])
def test_query_length_limit(store: Store, mode: str) -> None:
    store.ingest("c", [SourceDocument(s, None, t, {}) for s, t in DOCS.items()])
    words = " ".join(f"w{i}" for i in range(20_000))
    with pytest.raises(QueryError, match=r"the query has 128,889 characters.*limit of 10,000"):
        store.search(words, collection="c", options=SearchOptions(mode=mode))
    hits = store.search("cat " + WORST_QUERY[4:], collection="c", options=SearchOptions(mode=mode))
    assert hits and all(math.isfinite(hit.score) for hit in hits)


def test_filter_limits_through_the_api(store: Store) -> None:
    store.ingest("c", [SourceDocument(s, None, t, {}) for s, t in DOCS.items()])
    with pytest.raises(FilterError, match=r"key 'n': \$in has 15,000 values"):
        store.search(
            "cat",
            collection="c",
            filter={"n": {"$in": list(range(15_000))}},
            options=SearchOptions(mode="keyword"),
        )
    deep: dict[str, Any] = {"a": 1}
    for _ in range(10_000):
        deep = {"$not": deep}
    with pytest.raises(FilterError, match="nested deeper than 32 levels"):
        store.search("cat", collection="c", filter=deep, options=SearchOptions(mode="keyword"))
    hits = store.search(
        "cat",
        collection="c",
        filter={"n": {"$nin": list(range(1000))}},
        options=SearchOptions(mode="keyword"),
    )
    assert hits


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda s: s.search(
                "cat",
                collection="c",
                options=SearchOptions(mode="dense"),
                vector=np.ones(16),
                k=2**40,
            ),
            "k must be between 1 and 1000",
        ),
        (
            lambda s: s.search(
                "vector",
                collection="c",
                options=SearchOptions(mode="dense", ef_search=2**31),
                vector=np.ones(16),
            ),
            "ef_search must be between 1 and 1000",
        ),
        (
            lambda s: s.ask("cat", collection="c", max_tokens=2**40),
            "max_tokens must be between 1 and",
        ),
        (lambda s: s.ask("cat", collection="c", max_tokens=NAN), "max_tokens must be an integer"),
    ],
    ids=["vector-k", "vector-ef-search", "max-tokens", "max-tokens-nan"],
)
def test_integers_beyond_int4_are_refused_naming_them(
    store: Store, call: Any, message: str
) -> None:
    """An integer beyond int4 finds no SQL function (a raw psycopg error): refused first."""
    store.ingest("c", [SourceDocument(s, None, t, {}) for s, t in DOCS.items()])
    with pytest.raises(ConfigError, match=message):
        call(store)


def test_numpy_integers_are_accepted_and_bools_refused(store: Store) -> None:
    store.ingest("c", [SourceDocument(s, None, t, {}) for s, t in DOCS.items()])
    for mode in ("dense", "keyword", "hybrid"):
        by_mode = SearchOptions(mode=mode)
        assert len(store.search("cat", collection="c", k=np.int64(2), options=by_mode)) == 2
    numpy_mmr = SearchOptions(mmr_lambda=np.float32(0.5))
    assert len(store.search("cat", collection="c", k=np.int32(2), options=numpy_mmr)) == 2
    fusion = Fusion(rrf_k=np.int64(60), candidates=np.int16(50))
    options = SearchOptions(ef_search=np.int64(50), rerank_depth=np.uint8(20), fusion=fusion)
    assert type(options.rerank_depth) is int and type(options.ef_search) is int
    numpy_ef = SearchOptions(ef_search=np.int64(50))
    assert len(store.search("cat", collection="c", k=np.int64(3), options=numpy_ef)) == 3
    numpy_fusion = SearchOptions(fusion=fusion)
    assert len(store.search("cat", collection="c", k=np.int64(3), options=numpy_fusion)) == 3
    assert (
        len(
            store.search(
                "cat",
                collection="c",
                options=SearchOptions(mode="dense", ef_search=np.int64(9)),
                vector=np.ones(16),
                k=np.int64(1),
            )
        )
        == 1
    )
    context = store.context("cat", collection="c", k=np.int64(2), budget_tokens=np.int64(400))
    assert len(context.citations) == 2
    with pytest.raises(ConfigError, match="k must be an integer, not True"):
        store.search("cat", collection="c", k=True)
    with pytest.raises(ConfigError, match=r"k must be an integer, not np\.float64\(3\.0\)"):
        store.search("cat", collection="c", k=np.float64(3.0))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="MMR lambda must be a number, not True"):
        store.search("cat", collection="c", options=SearchOptions(mmr_lambda=True))
    with pytest.raises(ConfigError, match=r"MMR lambda must be a finite number .* not nan"):
        store.search("cat", collection="c", options=SearchOptions(mmr_lambda=NAN))
