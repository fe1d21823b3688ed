"""JSON and JSONL records as documents: strict parsing, and the fields a record maps to.

A record is an object with an id, a text and metadata (see JsonlFields); one with an
`embedding` is a ready chunk, as `pgcontext export` writes them (see ingest.exchange).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

import orjson

from pgcontext.ingest.documents import JsonlFields, PrecomputedChunk, SourceDocument, SourceProblem
from pgcontext.ingest.files import EMPTY
from pgcontext.ingest.parsing import normalise_newlines

_AUTO_ID_KEYS = ("_id", "id")
_AUTO_TEXT_KEYS = ("text", "content", "body")


def loads(text: str) -> Any:
    """Parse JSON: integers exact, NaN and numbers beyond a double (1e400) refused.

    orjson is several times faster (it matters for lines of embeddings), but it turns
    integers beyond 64 bits into floats: a text holding such a long integer, and any text
    orjson refuses (for a clearer message), goes to the standard parser.
    """
    if _LONG_INTEGER.search(text) is None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(
        text, parse_constant=_reject_constant, parse_float=_finite_float, parse_int=_exact_int
    )


# 19 digits or more, not part of a decimal fraction or exponent: maybe beyond 64 bits.
_LONG_INTEGER = re.compile(r"(?<![\d.])\d{19,}(?![\d.eE])")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if math.isinf(value):
        raise ValueError(
            f"number {literal} is too large for a double (it would be Infinity); "
            "write it as a string"
        )
    return value


def _exact_int(literal: str) -> int:
    try:
        return int(literal)
    except ValueError:  # beyond Python's limit on digits converted (4300)
        raise ValueError(f"an integer of {len(literal.lstrip('-'))} digits is too long") from None


@dataclass(frozen=True)
class _Refused:
    """A number `loads` refuses, kept in place so that only its record fails."""

    reason: str


def marked_array(text: str) -> list[Any] | None:
    """The JSON array in `text` with each refused number a _Refused; None if no array."""

    def mark(parse: Any) -> Any:  # a parse_* hook of json.loads
        def parse_or_mark(literal: str) -> Any:
            try:
                return parse(literal)
            except ValueError as exc:
                return _Refused(str(exc))

        return parse_or_mark

    try:
        value = json.loads(
            text,
            parse_constant=mark(_reject_constant),
            parse_float=mark(_finite_float),
            parse_int=mark(_exact_int),
        )
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, list) else None


def first_refused(value: Any) -> _Refused | None:
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, _Refused):
            return item
        if isinstance(item, dict):
            pending.extend(reversed(item.values()))
        elif isinstance(item, list):
            pending.extend(reversed(item))
    return None


def is_syntax_error(exc: Exception) -> bool:
    """Invalid JSON, as opposed to valid JSON holding a number `loads` refuses."""
    return isinstance(exc, json.JSONDecodeError)


def json_error(exc: ValueError | RecursionError, *, one_line: bool = False) -> str:
    if isinstance(exc, json.JSONDecodeError):
        where = f"column {exc.colno}" if one_line else f"line {exc.lineno} column {exc.colno}"
        return f"{exc.msg} ({where})"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc)


def json_type(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def record_document(record: Any, fields: JsonlFields, where: str) -> SourceDocument | SourceProblem:
    """Turn one JSON record into a document; `where` is its location, the fallback id."""
    if not isinstance(record, dict):
        return SourceProblem(where, f"record is a JSON {json_type(record)}, not an object")
    if "embedding" in record:
        return _embedded_record(record, fields, where)
    id_key = _id_key(record, fields.id)
    source = where if id_key is None else _as_id(record.get(id_key))
    if source is None:
        reason = (
            f"id field {id_key!r} is missing, empty or not a string or number; "
            "name another with fields.id"
        )
        return SourceProblem(where, reason, parameter="fields.id")
    text_key = _text_key(record, fields.text)
    if text_key is None:
        looked_for = fields.text or ", ".join(_AUTO_TEXT_KEYS)
        reason = f"no text field: looked for {looked_for}; name one with fields.text"
        return SourceProblem(where, reason, parameter="fields.text")
    text = record[text_key]
    if not isinstance(text, str):
        return SourceProblem(
            where, f"text field {text_key!r} is a JSON {json_type(text)}, not a string"
        )
    if not text.strip():
        return SourceProblem(where, EMPTY)
    title_key = fields.title or "title"
    title = _as_title(record.get(title_key))
    used = {key for key in (id_key, text_key, title_key) if key is not None}
    metadata = _record_metadata(record, used)
    return SourceDocument(source, title, _with_title(title, normalise_newlines(text)), metadata)


def _id_key(record: dict[str, Any], named: str | None) -> str | None:
    """The field holding the record id; None when there is none and the location is used."""
    return named or next((key for key in _AUTO_ID_KEYS if key in record), None)


def _as_id(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _text_key(record: dict[str, Any], named: str | None) -> str | None:
    candidates = (named,) if named else _AUTO_TEXT_KEYS
    return next((key for key in candidates if key in record), None)


def _as_title(value: Any) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _with_title(title: str | None, text: str) -> str:
    # The title is put in the text so that it is embedded and searchable with the body.
    if title is None or text.lstrip().startswith(title):
        return text
    return f"{title}\n\n{text}"


def _record_metadata(record: dict[str, Any], used: set[str]) -> dict[str, Any]:
    """The record's other fields; a nested "metadata" object is merged, top-level keys win."""
    rest = {key: value for key, value in record.items() if key not in used}
    nested = rest.get("metadata")
    if isinstance(nested, dict):
        del rest["metadata"]
        return {**nested, **rest}
    return rest


def _embedded_record(
    record: dict[str, Any], fields: JsonlFields, where: str
) -> SourceDocument | SourceProblem:
    """A record with its own `embedding`: one chunk, stored as is (no chunking, no model).

    `pgcontext export` writes these (with `document`, `position`, `span`, `heading`,
    `token_count`, `model`); a record of another program needs only an id, a text and the
    embedding, and becomes a one-chunk document.
    """
    vector = record["embedding"]
    if (
        not isinstance(vector, list)
        or not vector
        or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in vector)
    ):
        return SourceProblem(where, "embedding is not a non-empty list of numbers")
    if "document" in record:
        source = _as_id(record["document"])
    else:
        id_key = _id_key(record, fields.id)
        source = where if id_key is None else _as_id(record.get(id_key))
    text_key = _text_key(record, fields.text)
    text = record.get(text_key) if text_key else None
    if source is None or not isinstance(text, str) or not text.strip():
        return SourceProblem(where, "a record with an embedding needs an id and a non-empty text")
    position = record.get("position", 0)
    span = record.get("span") or [0, len(text)]
    if not isinstance(position, int) or position < 0 or not _is_span(span, len(text)):
        return SourceProblem(where, "position must be a whole number >= 0 and span [start, end]")
    known = {
        "document",
        "chunk_id",
        "position",
        "span",
        "heading",
        "token_count",
        "model",
        "embedding",
        "title",
        "metadata",
        fields.id or "_id",
        "id",
        text_key,
    }
    nested = record.get("metadata")
    metadata = (
        nested if isinstance(nested, dict) else {k: v for k, v in record.items() if k not in known}
    )
    chunk = PrecomputedChunk(
        position=position,
        text=text,
        start=span[0],
        end=span[1],
        embedding=vector,
        heading=record.get("heading") if isinstance(record.get("heading"), str) else None,
        token_count=record.get("token_count")
        if isinstance(record.get("token_count"), int)
        else None,
        model=_model_label(record.get("model")),
    )
    return SourceDocument(source, _as_title(record.get("title")), text, metadata, (chunk,))


def _is_span(span: Any, length: int) -> bool:
    return (
        isinstance(span, list)
        and len(span) == 2
        and all(isinstance(x, int) for x in span)
        and 0 <= span[0] <= span[1]
        and span[1] - span[0] == length
    )


def _model_label(model: Any) -> str | None:
    if isinstance(model, str):
        return model
    if isinstance(model, dict) and isinstance(model.get("name"), str):
        revision = model.get("revision")
        return f"{model['name']}@{revision}" if isinstance(revision, str) else model["name"]
    return None
