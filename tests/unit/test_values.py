"""Tests of pgcontext.ingest.values: the limits of what is stored and exported exactly."""

from __future__ import annotations

import math
from typing import Any

import pytest

from pgcontext.errors import QueryError
from pgcontext.ingest.values import check_embedding, check_int4, check_json_value
from pgcontext.limits import INT4_MAX, INT64_MAX, INT64_MIN, MAX_JSON_DEPTH, check_query_vector


def _nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels - 1):
        value = [value]
    return {"k": value}  # the object is level 1


@pytest.mark.parametrize(
    "value",
    [
        {"a": INT64_MAX, "b": INT64_MIN, "c": 2.0**63 - 1024, "d": -(2.0**63) + 1024},
        {"f": [0.1, 5e-324, 1e-300, -0.0, 1.5e16], "s": "\u2028 \U0001f600", "t": ("x", 1)},
        {"nothing": None, "yes": True, "empty": {}, "list": []},
        _nested(MAX_JSON_DEPTH),
    ],
)
def test_values_that_come_back_exactly_are_accepted(value: Any) -> None:
    assert check_json_value(value) is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ({"n": INT64_MAX + 1}, "metadata['n']: integer 9223372036854775808 is outside"),
        ({"n": [INT64_MIN - 1]}, "metadata['n'][0]: integer -9223372036854775809 is outside"),
        ({"n": 10**5000}, "metadata['n']: integer of about 5001 digits is outside"),
        ({"n": 2.0**63}, "metadata['n']: number 9.223372036854776e+18 is outside"),
        ({"n": math.inf}, "metadata['n']: inf is not a JSON number"),
        ({"n": math.nan}, "metadata['n']: nan is not a JSON number"),
        (_nested(MAX_JSON_DEPTH + 1), "metadata['k'][0][0][0][0][0]… is nested more than 64"),
        ({"a": [[[[[[[[2**64]]]]]]]]}, "metadata['a'][0][0][0][0][0]…: integer 184467"),
        ({1: "x"}, "metadata: key 1 is not a string"),
        ({"a\x00": "x"}, "metadata: key 'a\\x00' contains a NUL character"),
        ({"a": "\ud800"}, "metadata['a'] is not valid UTF-8 (lone UTF-16 surrogate U+D800"),
        ({"a": {1, 2}}, "metadata['a']: a Python set is not a JSON value"),
        ({"a": b"x"}, "metadata['a']: a Python bytes is not a JSON value"),
    ],
)
def test_values_that_would_change_or_fail_are_refused(value: Any, reason: str) -> None:
    problem = check_json_value(value)
    assert problem is not None and problem.startswith(reason), problem


def test_size_limit() -> None:
    assert check_json_value({"a": "x" * 100}, max_bytes=200) is None
    assert check_json_value({"a": "x" * 200}, max_bytes=200) == (
        "metadata is 209 bytes of JSON, over the limit of 200"
    )


def test_int4_range() -> None:
    assert check_int4(0, "position") is None and check_int4(INT4_MAX, "position") is None
    assert check_int4(INT4_MAX + 1, "position") == (
        "position is 2147483648; it must be a whole number from 0 to 2147483647"
    )
    assert check_int4(-1, "token_count") is not None


def test_embeddings() -> None:
    assert check_embedding([0.0, 1.0, -1e19]) is None
    assert check_embedding([1.0, 3.5e38]) == "embedding component 1 is 3.5e+38, beyond float32"
    assert check_embedding([1.0, math.nan]) == "embedding component 1 is nan: NaN or infinite"
    assert check_embedding([1, 10**39]) == (
        "embedding component 1 is 1000000000000000000000000000000000000000, beyond float32"
    )
    assert check_embedding([1, 2, 10**400]) == (
        "embedding component 2 is of about 401 digits, beyond float32"
    )
    assert check_embedding([0, 0]) is not None and "all zeros" in str(check_embedding([0, 0]))
    assert "too large" in str(check_embedding([3e38, 3e38]))


@pytest.mark.parametrize(
    "vector",
    [[3e38, 3e38], [1e-30, 1e-30], [1.0, 3.5e38], [1.0, math.inf], [0.0, 0.0]],
    ids=["norm-overflows", "norm-underflows", "component-overflows", "infinite", "zeros"],
)
def test_a_query_vector_follows_the_embedding_rule(vector: list[float]) -> None:
    """One vector rule: a query vector pgvector could not take a cosine with is refused,
    with the same reason as a stored embedding."""
    reason = check_embedding(vector)
    assert reason is not None and reason.startswith("embedding")
    with pytest.raises(QueryError) as caught:
        check_query_vector(vector)
    assert str(caught.value) == "the query vector" + reason.removeprefix("embedding")
