"""The one rule for the values pgcontext stores: each comes back exactly as it went in.

A value is accepted only if it survives jsonb (or its int4/vector column) and the JSON of
`pgcontext export` unchanged; anything else is refused for its own record, with the reason,
before it can fail a whole batch in PostgreSQL or an export halfway through.

The limits, stated once in pgcontext.limits:
- integers: signed 64-bit (`INT64_MIN`..`INT64_MAX`); the export's JSON writer stops there;
- other numbers: finite doubles of magnitude below 2**63 (jsonb hands a large double back as
  an integer of all its digits, so the integer limit applies to it too);
- nesting: `MAX_JSON_DEPTH` levels of objects and arrays (the metadata object is level 1);
- size: `MAX_METADATA_BYTES` of JSON per document's metadata (it is copied to every chunk);
- text: no NUL character (PostgreSQL text cannot hold it), no lone UTF-16 surrogate (not
  encodable as UTF-8);
- positions, spans and token counts: whole numbers from 0 to `INT4_MAX` (int4 columns);
- embeddings: float32 components, finite, with a non-zero finite norm (cosine needs one).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from pgcontext.limits import (
    INT4_MAX,
    INT64_MAX,
    INT64_MIN,
    MAX_JSON_DEPTH,
    MAX_METADATA_BYTES,
    int_problem,
    shown_int,
    text_problem,
    vector_problem,
)

_PATH_LEVELS = 6  # levels of a path named in a reason


def check_text(value: str, where: str) -> str | None:
    """Why PostgreSQL cannot store the string `value` (named `where`), or None.

    JSON escapes let NUL characters and lone surrogates past the UTF-8 check of a file.
    """
    problem = text_problem(value)
    return None if problem is None else f"{where} {problem}"


def check_json_value(
    value: Any,
    where: str = "metadata",
    *,
    max_depth: int = MAX_JSON_DEPTH,
    max_bytes: int = MAX_METADATA_BYTES,
) -> str | None:
    """Why `value` would not come back exactly from jsonb and the export, or None."""
    problem = _check(value, where, 0, max_depth)
    if problem is not None:
        return problem
    size = len(json.dumps(value, ensure_ascii=False).encode())
    if size > max_bytes:
        return f"{where} is {size} bytes of JSON, over the limit of {max_bytes}"
    return None


def check_int4(value: int, where: str) -> str | None:
    """Why `value` does not fit an int4 column as a count or position, or None."""
    if int_problem(where, value, 0, INT4_MAX) is None:
        return None
    return f"{where} is {value}; it must be a whole number from 0 to {INT4_MAX}"


def check_embedding(vector: Sequence[float]) -> str | None:
    """Why `vector` cannot be stored as a usable float32 embedding, or None."""
    return vector_problem(vector, "embedding")


def _check(value: Any, where: str, depth: int, max_depth: int) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        return check_text(value, where)
    if isinstance(value, int):
        if INT64_MIN <= value <= INT64_MAX:
            return None
        return (
            f"{where}: integer {shown_int(value)} is outside the signed 64-bit range;"
            " write it as a string"
        )
    if isinstance(value, float):
        if not math.isfinite(value):
            return f"{where}: {value} is not a JSON number"
        if abs(value) < 2**63:
            return None
        return (
            f"{where}: number {value!r} is outside the signed 64-bit range (PostgreSQL returns"
            " it as an integer of all its digits); write it as a string"
        )
    if not isinstance(value, dict | list | tuple):
        return f"{where}: a Python {type(value).__name__} is not a JSON value"
    if depth >= max_depth:
        return f"{where} is nested more than {max_depth} levels deep"
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{where}: key {key!r} is not a string"
            problem = check_text(key, f"{where}: key {key!r}") or _check(
                item, _inside(where, f"[{key!r}]", depth), depth + 1, max_depth
            )
            if problem is not None:
                return problem
        return None
    for index, item in enumerate(value):
        problem = _check(item, _inside(where, f"[{index}]", depth), depth + 1, max_depth)
        if problem is not None:
            return problem
    return None


def _inside(where: str, step: str, depth: int) -> str:
    """The path of an item in a reason; past a few levels, "…" stands for the rest."""
    if depth < _PATH_LEVELS:
        return where + step
    return where if where.endswith("…") else where + "…"
