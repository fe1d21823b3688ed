"""Every limit on a search request, in one place, and the checks that enforce them.

The SQL functions (sql/010, 040, 050) refuse the same values with their own exceptions, so
psql users get the same rules; tests/integration/test_search_limits.py holds the two
together. Each limit sits well above real use and below what PostgreSQL can evaluate
(a jsonpath or tsquery of ~15,000 terms exceeds its stack depth).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from pgcontext.errors import ConfigError, QueryError

MAX_K = 1000
MAX_EF_SEARCH = 1000
MAX_CANDIDATES = 1000  # hybrid search: candidates per side

MAX_FILTER_DEPTH = 32  # nesting of filter objects through $and, $or and $not
MAX_IN_VALUES = 1000  # values of one $in or $nin list
MAX_FILTER_TERMS = 2000  # comparisons in a whole filter, each $in value counting as one
MAX_NUMBER_DIGITS = 100  # digits of an integer in a filter (jsonb keeps it exact)
# --filter text: one JSON level per filter level through $and/$or (object and list), plus the
# innermost key's operator object and $in list.
MAX_FILTER_JSON_DEPTH = 2 * MAX_FILTER_DEPTH + 1

MAX_QUERY_CHARS = 10_000  # ~1,500 words; BM25 handles ~5,000 terms at this length

K1_RANGE = (0.0, 100.0)  # BM25 term-frequency saturation (usual values 0.5-2)
B_RANGE = (0.0, 1.0)  # BM25 length normalisation, a fraction by definition
MIN_RRF_K = 1  # RRF adds it to ranks counted from 1; 0 would still divide, below 0 not
MAX_WEIGHT = 1e6  # RRF side weights: finite, >= 0, not both 0
BUDGET_RANGE = (16, 1_000_000)  # tokens of an assembled context


def check_int(name: str, value: Any, low: int, high: int | None = None) -> None:
    """Raise ConfigError unless `value` is an integer in [low, high] (no bool, no float)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ConfigError(f"{name} must be an integer, not {value!r}")
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigError(f"{name} must be {bounds}, not {value}")


def check_float(name: str, value: Any, low: float, high: float) -> None:
    """Raise ConfigError unless `value` is a finite number in [low, high] (NaN refused)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ConfigError(f"{name} must be a number, not {value!r}")
    if not (math.isfinite(value) and low <= value <= high):
        raise ConfigError(
            f"{name} must be a finite number between {low:g} and {high:g}, not {value}"
        )


def check_query(query: Any) -> None:
    """Raise QueryError unless `query` is a string of at most MAX_QUERY_CHARS characters."""
    if not isinstance(query, str):
        raise QueryError(f"the query must be a string, not {type(query).__name__}")
    if len(query) > MAX_QUERY_CHARS:
        raise QueryError(
            f"the query has {len(query):,} characters, more than the limit of "
            f"{MAX_QUERY_CHARS:,}; shorten it (keep the words that matter)"
        )


def check_query_vector(vector: Any) -> Any:
    """The query vector as float32, or QueryError if it is empty, not finite or all zeros."""
    array = np.asarray(vector, dtype=np.float32).reshape(-1)
    if array.size == 0:
        raise QueryError("the query vector is empty")
    if not np.isfinite(array).all():
        raise QueryError("the query vector has a NaN or infinite component")
    if not array.any():
        # Cosine distance to a zero vector is NaN: every score would be NaN.
        raise QueryError("the query vector is all zeros: it has no direction to search by")
    return array
