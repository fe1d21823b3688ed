"""The SQL functions' DEFAULTs are the Python defaults of pgcontext.limits, and the Python
search functions default to the same values: one source for every default."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

import psycopg

from pgcontext import limits
from pgcontext.retrieve.dense import dense_search
from pgcontext.retrieve.hybrid import Fusion, hybrid_search
from pgcontext.retrieve.keyword import keyword_search

NULL = None  # a DEFAULT NULL (the filters)

# Every public search function (those returning pgcontext.search_hit, and mmr): each of its
# defaulted arguments, and its value. (The queue's functions are not searches.)
SQL_DEFAULTS: dict[str, dict[str, float | None]] = {
    "search": {"k": limits.DEFAULT_K, "filter": NULL, "ef_search": limits.DEFAULT_EF_SEARCH},
    "keyword_search": {
        "k": limits.DEFAULT_K,
        "filter": NULL,
        "k1": limits.DEFAULT_K1,
        "b": limits.DEFAULT_B,
    },
    "hybrid_search": {
        "k": limits.DEFAULT_K,
        "filter": NULL,
        "candidates": limits.DEFAULT_CANDIDATES,
        "rrf_k": limits.DEFAULT_RRF_K,
        "dense_weight": limits.DEFAULT_DENSE_WEIGHT,
        "keyword_weight": limits.DEFAULT_KEYWORD_WEIGHT,
        "ef_search": limits.DEFAULT_HYBRID_EF_SEARCH,
        "k1": limits.DEFAULT_K1,
        "b": limits.DEFAULT_B,
    },
    "similar_to_chunk": {"k": limits.DEFAULT_K, "filter": NULL},
    "similar_to_document": {"k": limits.DEFAULT_K, "filter": NULL},
    "mmr": {"k": limits.DEFAULT_K, "lambda": limits.DEFAULT_MMR_LAMBDA},
}

_ARGUMENT = re.compile(r"(?P<name>\w+) (?P<type>[^,]+?)(?: DEFAULT (?P<default>[^,]+))?")


def sql_defaults(db_url: str) -> dict[str, dict[str, float | None]]:
    """Search function -> its defaulted arguments, from pg_get_function_arguments."""
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT p.proname, pg_get_function_arguments(p.oid) FROM pg_proc p"
            " WHERE p.pronamespace = 'pgcontext'::regnamespace"
            " AND (p.prorettype = 'pgcontext.search_hit'::regtype OR p.proname = 'mmr')"
            " AND p.proname NOT LIKE '\\_%'"  # the private helpers have no defaults
        ).fetchall()
    found: dict[str, dict[str, float | None]] = {}
    for name, arguments in rows:
        defaults = found.setdefault(name, {})
        for argument in arguments.split(", "):
            match = _ARGUMENT.fullmatch(argument)
            assert match is not None, f"{name}: cannot read the argument {argument!r}"
            default = match["default"]
            if default is None:
                continue
            # "NULL::jsonpath", "10", "0.9": NULL or a plain number, nothing else expected
            defaults[match["name"]] = None if default.startswith("NULL") else float(default)
    return found


def test_sql_defaults_are_the_python_constants(db_url: str) -> None:
    assert sql_defaults(db_url) == SQL_DEFAULTS


def python_defaults(function: Callable[..., Any]) -> dict[str, Any]:
    return {
        name: parameter.default
        for name, parameter in inspect.signature(function).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }


def test_python_search_functions_default_as_their_sql_functions() -> None:
    fusion = Fusion()
    # Python's names where they differ: filter_path is the compiled filter.
    assert python_defaults(dense_search) == {
        "k": SQL_DEFAULTS["search"]["k"],
        "filter_path": NULL,
        "ef_search": SQL_DEFAULTS["search"]["ef_search"],
    }
    keyword = SQL_DEFAULTS["keyword_search"]
    assert python_defaults(keyword_search) == {
        "k": keyword["k"],
        "filter_path": keyword["filter"],
        "k1": keyword["k1"],
        "b": keyword["b"],
    }
    hybrid = SQL_DEFAULTS["hybrid_search"]
    assert python_defaults(hybrid_search) == {
        "k": hybrid["k"],
        "filter_path": hybrid["filter"],
        "fusion": fusion,
        "ef_search": hybrid["ef_search"],
        "k1": hybrid["k1"],
        "b": hybrid["b"],
    }
    assert (fusion.candidates, fusion.rrf_k, fusion.dense_weight, fusion.keyword_weight) == (
        hybrid["candidates"],
        hybrid["rrf_k"],
        hybrid["dense_weight"],
        hybrid["keyword_weight"],
    )
