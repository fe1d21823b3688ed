"""Compile a JSON metadata filter (a small Mongo-like language) to a PostgreSQL SQL/JSON path.

The search functions evaluate ``chunk.metadata @@ $filter``, so a filter becomes a jsonpath
*predicate* that is passed as a bound parameter, never spliced into SQL text.

The language::

    {"key": value}                          equality; value is a string, number, bool or null
    {"key": {"$eq"|"$ne": value}}           equality / inequality
    {"key": {"$gt"|"$gte"|"$lt"|"$lte": v}} ordering; v is a number or a string
    {"key": {"$in"|"$nin": [v, ...]}}       membership in a non-empty list of scalars
    {"key": {"$exists": true|false}}        presence of the key
    {"a": ..., "b": ...}                    several keys: all must match (AND)
    {"key": {"$gt": 1, "$lt": 5}}           several operators on one key: AND
    {"$and": [f, ...]}, {"$or": [f, ...]}   non-empty lists of filter objects
    {"$not": f}                             negation of a filter object

Keys are dotted paths into nested objects (``"a.b.c"``); each segment matches
``[A-Za-z0-9_][A-Za-z0-9_-]*``.

Semantics, chosen to follow MongoDB and checked against PostgreSQL in
``tests/integration/test_filter_sql.py``:

* Arrays match any element (PostgreSQL's lax mode): ``{"tags": "x"}`` matches
  ``{"tags": ["x", "y"]}``, and ``{"a.b": 1}`` matches ``{"a": [{"b": 0}, {"b": 1}]}``.
  Exactly one level of array nesting is unwrapped at each step: ``{"mix": 1}`` matches
  ``1`` and ``[1]`` but not ``[[1]]`` (lax mode alone would unwrap a second level when it
  compares, so every comparison first checks ``@.type() != "array"``).
* ``$ne`` and ``$nin`` are the negations of ``$eq`` and ``$in``: they are true when the key is
  missing, and for an array when *no* element matches.
* Values of different JSON types are never equal or ordered (``1`` vs ``"1"``, ``1`` vs
  ``true``); strings are ordered by Unicode code point; ``1 == 1.0``.
* ``null`` matches a null value *or* a missing key (as in MongoDB); ``{"$ne": null}`` therefore
  means "present and not null". ``{"$exists": false}`` matches only a missing key.
* With several operators on one key, each may be satisfied by a different array element.

Every comparison compiles to ``exists(PATH ? (@.type() != "array" && @ OP value))`` rather
than ``PATH OP value``: a bare comparison between different types yields SQL/JSON *unknown*,
and ``!(unknown)`` is still unknown, so ``$ne``/``$not`` would silently drop rows. Inside a
filter expression unknown counts as false, so every compiled predicate is strictly true or
false.

Limits (pgcontext.limits) keep a filter within what PostgreSQL evaluates: nesting,
values per ``$in``, comparisons in all and digits of an integer; each is a FilterError that
names the key.
"""

from __future__ import annotations

import json
import math
import re
import reprlib
from collections.abc import Mapping, Sequence
from typing import Any

from pgcontext.errors import FilterError
from pgcontext.limits import (
    MAX_FILTER_DEPTH,
    MAX_FILTER_JSON_DEPTH,
    MAX_FILTER_TERMS,
    MAX_IN_VALUES,
    MAX_NUMBER_DIGITS,
    text_problem,
)

__all__ = ["MAX_DEPTH", "compile_filter", "parse_filter_json"]

MAX_DEPTH = MAX_FILTER_DEPTH
"""Deepest allowed nesting of filter objects (through ``$and``, ``$or`` and ``$not``)."""

_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_\-]*")
_ORDERING = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_KEY_OPERATORS = ("$eq", "$ne", *_ORDERING, "$in", "$nin", "$exists")
_LOGICAL_OPERATORS = ("$and", "$or", "$not")
# Lax mode unwraps an array once at each path step and again when comparing: this guard
# stops the second unwrap, so [[1]] does not match 1 (one level, as documented).
_NOT_ARRAY = '@.type() != "array"'

# Error messages show values through this: a huge or deeply nested value stays one short line
# (plain repr of a 10,000-deep dict raises RecursionError).
_SHORT = reprlib.Repr()
_SHORT.maxlevel = 3
_SHORT.maxstring = 60
_SHORT.maxother = 60
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = 6


def _show(value: Any) -> str:
    return _SHORT.repr(value)


def parse_filter_json(text: str) -> dict[str, Any]:
    """A filter written as JSON text (the CLI's --filter): an object, duplicate keys refused."""
    _check_json_depth(text)
    try:
        value = json.loads(text, object_pairs_hook=_reject_duplicates, parse_int=_parse_int)
    except json.JSONDecodeError as exc:
        raise _refused(f"filter is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        example = '{"lang": "en"}'
        raise _refused(f"filter must be a JSON object such as {example}, got {_show(text)}")
    return value


def _check_json_depth(text: str) -> None:
    """Refuse deep nesting before json.loads recurses into it (RecursionError otherwise)."""
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_FILTER_JSON_DEPTH:
                raise _refused(
                    f"filter is nested deeper than {MAX_FILTER_JSON_DEPTH} JSON levels "
                    f"(filters allow {MAX_FILTER_DEPTH} levels of $and/$or/$not); flatten it"
                )
        elif char in "]}":
            depth -= 1


def _parse_int(digits: str) -> int:
    # Checked as text: Python refuses to convert integers of more than 4,300 digits.
    if len(digits.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise _refused(
            f"filter has an integer of {len(digits.lstrip('-')):,} digits; "
            f"filter numbers have at most {MAX_NUMBER_DIGITS} digits"
        )
    return int(digits)


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last duplicate silently, which would drop half of a filter.
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _refused(f"filter has the key {key!r} twice; merge its conditions")
        result[key] = value
    return result


def compile_filter(filter: Mapping[str, Any] | None) -> str | None:
    """Compile a filter object to a jsonpath predicate; ``None`` or ``{}`` means no filter."""
    if filter is None:
        return None
    if not isinstance(filter, Mapping):
        raise _refused(f"a filter must be a JSON object, got {_show(filter)}")
    if not filter:
        return None
    return _Compiler().object(filter, depth=1)


class _Compiler:
    """One filter's compilation; counts the comparisons against MAX_FILTER_TERMS."""

    def __init__(self) -> None:
        self.terms = 0

    def object(self, filter: Mapping[str, Any], depth: int) -> str:
        """Compile one filter object: the AND of its entries."""
        if depth > MAX_FILTER_DEPTH:
            raise _refused(
                f"the filter is nested deeper than {MAX_FILTER_DEPTH} levels; flatten it"
            )
        if not filter:
            raise _refused("an empty filter object {} is only allowed as the whole filter")
        parts = [self.entry(key, value, depth) for key, value in filter.items()]
        return _join(parts, "&&")

    def entry(self, key: Any, value: Any, depth: int) -> str:
        if not isinstance(key, str):
            raise _refused(f"filter keys must be strings, got {_show(key)}")
        if key in ("$and", "$or"):
            return self.junction(key, value, depth)
        if key == "$not":
            if not isinstance(value, Mapping):
                raise _refused(f"$not takes a filter object, got {_show(value)}")
            return f"!({self.object(value, depth + 1)})"
        if key.startswith("$"):
            raise _refused(
                f"unknown operator {_show(key)} at the top of a filter object; "
                f"valid there: {', '.join(_LOGICAL_OPERATORS)} (or a metadata key)"
            )
        return self.key(key, value)

    def junction(self, operator: str, value: Any, depth: int) -> str:
        """Compile ``$and``/``$or``: a non-empty list of filter objects."""
        if not _is_list(value) or not value:
            raise _refused(
                f"{operator} takes a non-empty list of filter objects, got {_show(value)}"
            )
        parts: list[str] = []
        for item in value:
            if not isinstance(item, Mapping):
                raise _refused(f"{operator} takes a list of filter objects, got item {_show(item)}")
            parts.append(self.object(item, depth + 1))
        return _join(parts, "&&" if operator == "$and" else "||")

    def key(self, key: str, value: Any) -> str:
        """Compile the condition on one metadata key: a scalar or an object of operators."""
        path = _path(key)
        if not isinstance(value, Mapping):
            return self.any_of(path, key, "$eq", [value])
        if not value:
            raise _refused(f"key {key!r} has an empty operator object; use e.g. {{'$eq': ...}}")
        if not any(isinstance(op, str) and op.startswith("$") for op in value):
            raise _refused(
                f"key {key!r} has an object value {_show(value)}; nested objects are matched "
                f"with a dotted key such as {key + '.field'!r}, or use operators: "
                f"{', '.join(_KEY_OPERATORS)}"
            )
        return _join([self.operator(path, key, op, arg) for op, arg in value.items()], "&&")

    def operator(self, path: str, key: str, op: Any, arg: Any) -> str:
        if op in ("$eq", "$ne"):
            found = self.any_of(path, key, op, [arg])
            return found if op == "$eq" else f"!({found})"
        if op in ("$in", "$nin"):
            if not _is_list(arg) or not arg:
                raise _refused(
                    f"key {key!r}: {op} takes a non-empty list of values, got {_show(arg)}"
                )
            if len(arg) > MAX_IN_VALUES:
                raise _refused(
                    f"key {key!r}: {op} has {len(arg):,} values, more than the limit of "
                    f"{MAX_IN_VALUES:,}; split the filter or tag the documents instead"
                )
            found = self.any_of(path, key, op, list(arg))
            return found if op == "$in" else f"!({found})"
        if op == "$exists":
            if not isinstance(arg, bool):
                raise _refused(f"key {key!r}: {op} takes true or false, got {_show(arg)}")
            self.count(key, 1)
            return f"exists({path})" if arg else f"!exists({path})"
        if op in _ORDERING:
            if isinstance(arg, bool) or not isinstance(arg, str | int | float):
                raise _refused(f"key {key!r}: {op} takes a number or a string, got {_show(arg)}")
            self.count(key, 1)
            test = f"@ {_ORDERING[op]} {_literal(key, op, arg)}"
            return f"exists({path} ? ({_NOT_ARRAY} && {test}))"
        raise _refused(
            f"unknown operator {_show(op)} on key {key!r}; "
            f"valid operators: {', '.join(_KEY_OPERATORS)}"
        )

    def any_of(self, path: str, key: str, op: str, values: Sequence[Any]) -> str:
        """True when some value at ``path`` equals one of ``values`` (null: or key missing)."""
        self.count(key, len(values))
        tests = " || ".join(f"@ == {_literal(key, op, value)}" for value in values)
        if len(values) > 1:
            tests = f"({tests})"
        found = f"exists({path} ? ({_NOT_ARRAY} && {tests}))"
        # MongoDB semantics: {"k": null} also matches documents without "k".
        return f"({found} || !exists({path}))" if None in values else found

    def count(self, key: str, terms: int) -> None:
        self.terms += terms
        if self.terms > MAX_FILTER_TERMS:
            raise _refused(
                f"the filter has more than {MAX_FILTER_TERMS:,} comparisons (reached at key "
                f"{key!r}, each $in value counting as one); simplify it"
            )


def _literal(key: str, op: str, value: Any) -> str:
    """Render a scalar as a jsonpath literal, or raise naming the key, operator and value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return _int_literal(key, op, value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _refused(f"key {key!r}: {op} needs a finite number, got {value!r}")
        return repr(value)  # shortest round-trip form, e.g. 0.1, 1e+20: valid jsonpath numbers
    if isinstance(value, str):
        return _string_literal(key, op, value)
    raise _refused(
        f"key {key!r}: {op} takes a string, number, true, false or null, got {_show(value)}"
    )


def _int_literal(key: str, op: str, value: int) -> str:
    # Compared, not printed: Python refuses to print integers of more than 4,300 digits.
    if abs(value) >= 10**MAX_NUMBER_DIGITS:
        raise _refused(f"key {key!r}: {op} value has too many digits (at most {MAX_NUMBER_DIGITS})")
    return str(value)


def _string_literal(key: str, op: str, value: str) -> str:
    problem = text_problem(value)
    if problem is not None:
        raise _refused(f"key {key!r}: {op} value {_show(value)} {problem}")
    # JSON escapes (\" \\ \n \uXXXX, surrogate pairs) are all valid jsonpath escapes.
    return json.dumps(value, ensure_ascii=True)


def _path(key: str) -> str:
    """Turn ``a.b`` into ``$."a"."b"`` after checking every segment."""
    segments = key.split(".")
    if not all(_SEGMENT.fullmatch(segment) for segment in segments):
        raise _refused(
            f"invalid filter key {_show(key)}: use dot-separated names of letters, digits, "
            f"'_' and '-' (not starting with '-'), e.g. 'source.lang'"
        )
    return "$" + "".join(f".{json.dumps(segment)}" for segment in segments)


def _join(parts: Sequence[str], operator: str) -> str:
    return parts[0] if len(parts) == 1 else "(" + f" {operator} ".join(parts) + ")"


def _is_list(value: Any) -> bool:
    return isinstance(value, list | tuple)


def _refused(message: str) -> FilterError:
    """A FilterError that names the `filter` parameter (the CLI maps it to --filter)."""
    return FilterError(message, parameter="filter")
