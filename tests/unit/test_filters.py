"""Compiling metadata filters to jsonpath: the text produced and every rejection.

What the compiled paths *mean* is checked against PostgreSQL in
tests/integration/test_filter_sql.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from pgcontext.errors import FilterError
from pgcontext.limits import MAX_FILTER_TERMS, MAX_IN_VALUES, MAX_NUMBER_DIGITS
from pgcontext.retrieve.filters import MAX_DEPTH, compile_filter, parse_filter_json

NA = '@.type() != "array"'  # the guard that keeps array unwrapping to one level


@pytest.mark.parametrize("empty", [None, {}])
def test_no_filter_compiles_to_none(empty: dict[str, Any] | None) -> None:
    assert compile_filter(empty) is None


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        ({"lang": "en"}, f'exists($."lang" ? ({NA} && @ == "en"))'),
        ({"n": 3}, f'exists($."n" ? ({NA} && @ == 3))'),
        ({"n": -2.5}, f'exists($."n" ? ({NA} && @ == -2.5))'),
        ({"n": 1e20}, f'exists($."n" ? ({NA} && @ == 1e+20))'),
        ({"ok": True}, f'exists($."ok" ? ({NA} && @ == true))'),
        ({"ok": False}, f'exists($."ok" ? ({NA} && @ == false))'),
        ({"a.b-c.d_1": 1}, f'exists($."a"."b-c"."d_1" ? ({NA} && @ == 1))'),
        ({"n": {"$eq": 1}}, f'exists($."n" ? ({NA} && @ == 1))'),
        ({"n": {"$ne": 1}}, f'!(exists($."n" ? ({NA} && @ == 1)))'),
        ({"n": {"$gt": 1}}, f'exists($."n" ? ({NA} && @ > 1))'),
        ({"n": {"$gte": 1}}, f'exists($."n" ? ({NA} && @ >= 1))'),
        ({"n": {"$lt": 1}}, f'exists($."n" ? ({NA} && @ < 1))'),
        ({"n": {"$lte": "b"}}, f'exists($."n" ? ({NA} && @ <= "b"))'),
        ({"n": {"$in": [1, "x"]}}, f'exists($."n" ? ({NA} && (@ == 1 || @ == "x")))'),
        ({"n": {"$nin": [1, 2]}}, f'!(exists($."n" ? ({NA} && (@ == 1 || @ == 2))))'),
        ({"n": {"$exists": True}}, 'exists($."n")'),
        ({"n": {"$exists": False}}, '!exists($."n")'),
    ],
)
def test_each_operator(filter: dict[str, Any], expected: str) -> None:
    assert compile_filter(filter) == expected


def test_null_also_matches_a_missing_key() -> None:
    # MongoDB semantics: {"k": null} matches k: null and documents without k.
    assert compile_filter({"k": None}) == f'(exists($."k" ? ({NA} && @ == null)) || !exists($."k"))'
    assert compile_filter({"k": {"$in": [None, 1]}}) == (
        f'(exists($."k" ? ({NA} && (@ == null || @ == 1))) || !exists($."k"))'
    )


def test_several_operators_on_one_key_are_anded() -> None:
    assert compile_filter({"n": {"$gte": 1, "$lt": 5}}) == (
        f'(exists($."n" ? ({NA} && @ >= 1)) && exists($."n" ? ({NA} && @ < 5)))'
    )


def test_several_keys_are_anded() -> None:
    assert compile_filter({"a": 1, "b": 2}) == (
        f'(exists($."a" ? ({NA} && @ == 1)) && exists($."b" ? ({NA} && @ == 2)))'
    )


def test_logical_operators_nest_with_parentheses() -> None:
    filter = {"$or": [{"a": 1}, {"$and": [{"b": 2}, {"$not": {"c": 3, "d": 4}}]}]}
    assert compile_filter(filter) == (
        f'(exists($."a" ? ({NA} && @ == 1)) || (exists($."b" ? ({NA} && @ == 2)) && '
        f'!((exists($."c" ? ({NA} && @ == 3)) && exists($."d" ? ({NA} && @ == 4))))))'
    )


def test_single_item_junction_needs_no_parentheses() -> None:
    assert compile_filter({"$and": [{"a": 1}]}) == f'exists($."a" ? ({NA} && @ == 1))'


def test_strings_become_ascii_json_literals() -> None:
    value = 'say "hi"\\ \n\t é 😀 \x01'
    assert compile_filter({"s": value}) == (
        f'exists($."s" ? ({NA} && @ == "say \\"hi\\"\\\\ \\n\\t \\u00e9 \\ud83d\\ude00 \\u0001"))'
    )


def test_tuple_is_accepted_as_a_list() -> None:
    assert compile_filter({"n": {"$in": (1,)}}) == f'exists($."n" ? ({NA} && @ == 1))'


def test_depth_limit() -> None:
    filter: dict[str, Any] = {"a": 1}
    for _ in range(MAX_DEPTH - 1):
        filter = {"$not": filter}
    assert compile_filter(filter) is not None  # exactly MAX_DEPTH levels
    with pytest.raises(FilterError, match="deeper than 32"):
        compile_filter({"$and": [filter]})


@pytest.mark.parametrize(
    ("filter", "message"),
    [
        # unknown operators, named and with the valid ones listed
        ({"a": {"$regex": "x"}}, r"unknown operator '\$regex' on key 'a'.*\$eq, \$ne"),
        ({"a": {"$gt": 1, "b": 2}}, r"unknown operator 'b' on key 'a'"),
        ({"$nor": [{"a": 1}]}, r"unknown operator '\$nor'.*\$and, \$or, \$not"),
        ({"a": {"$not": {"$gt": 1}}}, r"unknown operator '\$not' on key 'a'"),
        # bad keys
        ({"a..b": 1}, r"invalid filter key 'a\.\.b'"),
        ({'a"b': 1}, r"invalid filter key 'a\"b'"),
        ({"": 1}, r"invalid filter key ''"),
        ({"a.": 1}, r"invalid filter key 'a\.'"),
        ({"a.$x": 1}, r"invalid filter key 'a\.\$x'"),
        ({"a b": 1}, r"invalid filter key 'a b'"),
        ({"-a": 1}, r"invalid filter key '-a'"),
        ({"a\\b": 1}, r"invalid filter key"),
        ({1: 1}, r"filter keys must be strings"),
        # bad values
        ({"a": {"b": 1}}, r"key 'a' has an object value.*'a\.field'"),
        ({"a": {}}, r"key 'a' has an empty operator object"),
        ({"a": [1, 2]}, r"key 'a': \$eq takes a string, number.*\[1, 2\]"),
        ({"a": float("nan")}, r"key 'a': \$eq needs a finite number, got nan"),
        ({"a": {"$lt": float("inf")}}, r"key 'a': \$lt needs a finite number, got inf"),
        ({"a": {"$in": 1}}, r"key 'a': \$in takes a non-empty list of values, got 1"),
        ({"a": {"$in": "ab"}}, r"key 'a': \$in takes a non-empty list"),
        ({"a": {"$nin": []}}, r"key 'a': \$nin takes a non-empty list of values, got \[\]"),
        ({"a": {"$in": [1, {"b": 2}]}}, r"key 'a': \$in takes a string.*\{'b': 2\}"),
        ({"a": {"$gt": True}}, r"key 'a': \$gt takes a number or a string, got True"),
        ({"a": {"$gte": None}}, r"key 'a': \$gte takes a number or a string, got None"),
        ({"a": {"$lte": [1]}}, r"key 'a': \$lte takes a number or a string"),
        ({"a": {"$exists": 1}}, r"key 'a': \$exists takes true or false, got 1"),
        ({"a": "x\x00y"}, r"key 'a': \$eq value .* contains a NUL character"),
        (
            {"a": "\ud800"},
            r"key 'a': \$eq value .* is not valid UTF-8 \(lone UTF-16 surrogate U\+D800",
        ),
        ({"a": b"x"}, r"key 'a': \$eq takes a string"),
        ({"a": 10**5000}, r"key 'a': \$eq value has too many digits"),
        # bad logical operators
        ({"$and": []}, r"\$and takes a non-empty list of filter objects, got \[\]"),
        ({"$or": {"a": 1}}, r"\$or takes a non-empty list of filter objects"),
        ({"$or": [1]}, r"\$or takes a list of filter objects, got item 1"),
        ({"$and": [{}]}, r"empty filter object"),
        ({"$not": [{"a": 1}]}, r"\$not takes a filter object"),
        ({"$not": {}}, r"empty filter object"),
    ],
)
def test_rejections(filter: dict[Any, Any], message: str) -> None:
    with pytest.raises(FilterError, match=message):
        compile_filter(filter)


def test_rejects_a_non_object_filter() -> None:
    with pytest.raises(FilterError, match="must be a JSON object"):
        compile_filter([{"a": 1}])  # type: ignore[arg-type]


def test_parse_filter_json() -> None:
    assert parse_filter_json('{"a": {"$in": [1, "x"]}}') == {"a": {"$in": [1, "x"]}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{a: 1}", "filter is not valid JSON: Expecting property name"),
        ("", "filter is not valid JSON"),
        ("[1]", "filter must be a JSON object"),
        ('"a"', "filter must be a JSON object"),
        ('{"a": 1, "a": 2}', "filter has the key 'a' twice"),
    ],
)
def test_parse_filter_json_rejections(text: str, message: str) -> None:
    # The library names its parameter, not a CLI flag; the CLI maps `parameter` to --filter.
    with pytest.raises(FilterError, match=f"^{message}") as refused:
        parse_filter_json(text)
    assert refused.value.parameter == "filter"


def test_every_filter_error_names_the_filter_parameter() -> None:
    with pytest.raises(FilterError) as refused:
        compile_filter({"a": {"$near": 3}})
    assert refused.value.parameter == "filter"


# --- limits: each one a FilterError naming the key, never a traceback from json or Python ---


def test_in_values_limit() -> None:
    assert compile_filter({"a": {"$in": list(range(MAX_IN_VALUES))}}) is not None
    with pytest.raises(FilterError, match=r"key 'a': \$nin has 1,001 values.*limit of 1,000"):
        compile_filter({"a": {"$nin": list(range(MAX_IN_VALUES + 1))}})
    with pytest.raises(FilterError, match=r"key 'a': \$in has 15,000 values"):
        compile_filter({"a": {"$in": list(range(15_000))}})


def test_total_comparisons_limit() -> None:
    many = {f"k{i}": i for i in range(MAX_FILTER_TERMS)}
    assert compile_filter(many) is not None
    with pytest.raises(FilterError, match=r"more than 2,000 comparisons \(reached at key 'z'"):
        compile_filter({**many, "z": 1})
    spread = {"$or": [{"a": {"$in": list(range(1000))}}] * 3}
    with pytest.raises(FilterError, match="more than 2,000 comparisons"):
        compile_filter(spread)


def test_number_digits_limit() -> None:
    assert compile_filter({"a": 10**MAX_NUMBER_DIGITS - 1}) is not None
    with pytest.raises(FilterError, match=r"key 'a': \$gt value has too many digits"):
        compile_filter({"a": {"$gt": -(10**MAX_NUMBER_DIGITS)}})


def test_a_deep_value_is_refused_in_one_short_line() -> None:
    deep: Any = 1
    for _ in range(10_000):
        deep = {"x": deep}
    with pytest.raises(FilterError, match=r"\$eq takes a string") as error:
        compile_filter({"a": {"$eq": deep}})
    assert len(str(error.value)) < 300
    with pytest.raises(FilterError, match="has an object value") as error:
        compile_filter({"a": deep})
    assert len(str(error.value)) < 300


def test_parse_filter_json_refuses_deep_nesting_before_parsing() -> None:
    nested = '{"$not": ' * 10_000 + '{"a": 1}' + "}" * 10_000
    with pytest.raises(FilterError, match="filter is nested deeper than 65 JSON levels"):
        parse_filter_json(nested)
    with pytest.raises(FilterError, match="nested deeper than 65"):
        parse_filter_json("[" * 100_000)
    # brackets inside strings do not count
    assert parse_filter_json('{"a": "' + "[{" * 1000 + '"}') == {"a": "[{" * 1000}
    # the deepest filter the compiler allows parses: $and at every level
    filter_text = '{"a": {"$in": [1]}}'
    for _ in range(MAX_DEPTH - 1):
        filter_text = '{"$and": [' + filter_text + "]}"
    assert compile_filter(parse_filter_json(filter_text)) is not None


def test_parse_filter_json_refuses_a_huge_integer() -> None:
    with pytest.raises(FilterError, match="filter has an integer of 5,000 digits"):
        parse_filter_json('{"a": ' + "9" * 5000 + "}")
    assert parse_filter_json('{"a": -' + "9" * 100 + "}") == {"a": -(10**100 - 1)}
