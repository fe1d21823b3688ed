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
  Only one level of array nesting is unwrapped along a dotted path.
* ``$ne`` and ``$nin`` are the negations of ``$eq`` and ``$in``: they are true when the key is
  missing, and for an array when *no* element matches.
* Values of different JSON types are never equal or ordered (``1`` vs ``"1"``, ``1`` vs
  ``true``); strings are ordered by Unicode code point; ``1 == 1.0``.
* ``null`` matches a null value *or* a missing key (as in MongoDB); ``{"$ne": null}`` therefore
  means "present and not null". ``{"$exists": false}`` matches only a missing key.
* With several operators on one key, each may be satisfied by a different array element.

Every comparison compiles to ``exists(PATH ? (@ OP value))`` rather than ``PATH OP value``: a
bare comparison between different types yields SQL/JSON *unknown*, and ``!(unknown)`` is still
unknown, so ``$ne``/``$not`` would silently drop rows. Inside a filter expression unknown
counts as false, so every compiled predicate is strictly true or false. The form is also one that
a GIN ``jsonb_path_ops`` index can use.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pgcontext.errors import FilterError

__all__ = ["MAX_DEPTH", "compile_filter", "parse_filter_json"]

MAX_DEPTH = 32
"""Deepest allowed nesting of filter objects (through ``$and``, ``$or`` and ``$not``)."""

_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_\-]*")
_ORDERING = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_KEY_OPERATORS = ("$eq", "$ne", *_ORDERING, "$in", "$nin", "$exists")
_LOGICAL_OPERATORS = ("$and", "$or", "$not")


def parse_filter_json(text: str) -> dict[str, Any]:
    """Parse the ``--filter`` command-line option: a JSON object, duplicate keys rejected."""
    try:
        value = json.loads(text, object_pairs_hook=_reject_duplicates)
    except json.JSONDecodeError as exc:
        raise FilterError(f"--filter is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        example = '{"lang": "en"}'
        raise FilterError(f"--filter must be a JSON object such as {example}, got {text!r}")
    return value


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last duplicate silently, which would drop half of a filter.
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise FilterError(f"--filter has the key {key!r} twice; merge its conditions")
        result[key] = value
    return result


def compile_filter(filter: Mapping[str, Any] | None) -> str | None:
    """Compile a filter object to a jsonpath predicate; ``None`` or ``{}`` means no filter."""
    if filter is None:
        return None
    if not isinstance(filter, Mapping):
        raise FilterError(f"a filter must be a JSON object, got {filter!r}")
    if not filter:
        return None
    return _compile_object(filter, depth=1)


def _compile_object(filter: Mapping[str, Any], depth: int) -> str:
    """Compile one filter object: the AND of its entries."""
    if depth > MAX_DEPTH:
        raise FilterError(f"the filter is nested deeper than {MAX_DEPTH} levels; flatten it")
    if not filter:
        raise FilterError("an empty filter object {} is only allowed as the whole filter")
    parts = [_compile_entry(key, value, depth) for key, value in filter.items()]
    return _join(parts, "&&")


def _compile_entry(key: Any, value: Any, depth: int) -> str:
    if not isinstance(key, str):
        raise FilterError(f"filter keys must be strings, got {key!r}")
    if key in ("$and", "$or"):
        return _compile_junction(key, value, depth)
    if key == "$not":
        if not isinstance(value, Mapping):
            raise FilterError(f"$not takes a filter object, got {value!r}")
        return f"!({_compile_object(value, depth + 1)})"
    if key.startswith("$"):
        raise FilterError(
            f"unknown operator {key!r} at the top of a filter object; "
            f"valid there: {', '.join(_LOGICAL_OPERATORS)} (or a metadata key)"
        )
    return _compile_key(key, value)


def _compile_junction(operator: str, value: Any, depth: int) -> str:
    """Compile ``$and``/``$or``: a non-empty list of filter objects."""
    if not _is_list(value) or not value:
        raise FilterError(f"{operator} takes a non-empty list of filter objects, got {value!r}")
    parts: list[str] = []
    for item in value:
        if not isinstance(item, Mapping):
            raise FilterError(f"{operator} takes a list of filter objects, got item {item!r}")
        parts.append(_compile_object(item, depth + 1))
    return _join(parts, "&&" if operator == "$and" else "||")


def _compile_key(key: str, value: Any) -> str:
    """Compile the condition on one metadata key: a scalar or an object of operators."""
    path = _path(key)
    if not isinstance(value, Mapping):
        return _equals(path, key, "$eq", value)
    if not value:
        raise FilterError(f"key {key!r} has an empty operator object; use e.g. {{'$eq': ...}}")
    if not any(isinstance(op, str) and op.startswith("$") for op in value):
        raise FilterError(
            f"key {key!r} has an object value {value!r}; nested objects are matched with a "
            f"dotted key such as {key + '.field'!r}, or use operators: {', '.join(_KEY_OPERATORS)}"
        )
    return _join([_compile_operator(path, key, op, arg) for op, arg in value.items()], "&&")


def _compile_operator(path: str, key: str, op: str, arg: Any) -> str:
    compiler = _KEY_COMPILERS.get(op) or (_ordering if op in _ORDERING else None)
    if compiler is not None:
        return compiler(path, key, op, arg)
    raise FilterError(
        f"unknown operator {op!r} on key {key!r}; valid operators: {', '.join(_KEY_OPERATORS)}"
    )


def _equals(path: str, key: str, op: str, arg: Any) -> str:
    return _any_of(path, key, op, [arg])


def _not_equals(path: str, key: str, op: str, arg: Any) -> str:
    return f"!({_equals(path, key, op, arg)})"


def _in(path: str, key: str, op: str, arg: Any) -> str:
    if not _is_list(arg) or not arg:
        raise FilterError(f"key {key!r}: {op} takes a non-empty list of values, got {arg!r}")
    return _any_of(path, key, op, list(arg))


def _not_in(path: str, key: str, op: str, arg: Any) -> str:
    return f"!({_in(path, key, op, arg)})"


def _exists(path: str, key: str, op: str, arg: Any) -> str:
    if not isinstance(arg, bool):
        raise FilterError(f"key {key!r}: {op} takes true or false, got {arg!r}")
    return f"exists({path})" if arg else f"!exists({path})"


def _ordering(path: str, key: str, op: str, arg: Any) -> str:
    if isinstance(arg, bool) or not isinstance(arg, str | int | float):
        raise FilterError(f"key {key!r}: {op} takes a number or a string, got {arg!r}")
    return f"exists({path} ? (@ {_ORDERING[op]} {_literal(key, op, arg)}))"


_KEY_COMPILERS: dict[str, Callable[[str, str, str, Any], str]] = {
    "$eq": _equals,
    "$ne": _not_equals,
    "$in": _in,
    "$nin": _not_in,
    "$exists": _exists,
}


def _any_of(path: str, key: str, op: str, values: Sequence[Any]) -> str:
    """True when some value at ``path`` equals one of ``values`` (null: or the key is missing)."""
    tests = " || ".join(f"@ == {_literal(key, op, value)}" for value in values)
    found = f"exists({path} ? ({tests}))"
    # MongoDB semantics: {"k": null} also matches documents without "k".
    return f"({found} || !exists({path}))" if None in values else found


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
            raise FilterError(f"key {key!r}: {op} needs a finite number, got {value!r}")
        return repr(value)  # shortest round-trip form, e.g. 0.1, 1e+20: valid jsonpath numbers
    if isinstance(value, str):
        return _string_literal(key, op, value)
    raise FilterError(
        f"key {key!r}: {op} takes a string, number, true, false or null, got {value!r}"
    )


def _int_literal(key: str, op: str, value: int) -> str:
    try:
        return str(value)
    except ValueError as exc:  # Python refuses to print integers of more than 4300 digits
        raise FilterError(f"key {key!r}: {op} value has too many digits") from exc


def _string_literal(key: str, op: str, value: str) -> str:
    # PostgreSQL text cannot hold NUL, and a lone surrogate is not a character.
    if "\x00" in value:
        raise FilterError(f"key {key!r}: {op} value {value!r} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise FilterError(f"key {key!r}: {op} value {value!r} is not valid Unicode") from exc
    # JSON escapes (\" \\ \n \uXXXX, surrogate pairs) are all valid jsonpath escapes.
    return json.dumps(value, ensure_ascii=True)


def _path(key: str) -> str:
    """Turn ``a.b`` into ``$."a"."b"`` after checking every segment."""
    segments = key.split(".")
    if not all(_SEGMENT.fullmatch(segment) for segment in segments):
        raise FilterError(
            f"invalid filter key {key!r}: use dot-separated names of letters, digits, '_' and "
            f"'-' (not starting with '-'), e.g. 'source.lang'"
        )
    return "$" + "".join(f".{json.dumps(segment)}" for segment in segments)


def _join(parts: Sequence[str], operator: str) -> str:
    return parts[0] if len(parts) == 1 else "(" + f" {operator} ".join(parts) + ")"


def _is_list(value: Any) -> bool:
    return isinstance(value, list | tuple)
