"""Every default and limit of pgcontext, in one place, and the predicates that enforce them.

Search requests: the SQL functions (sql/005-070) refuse the same values with their own
exceptions, so psql users get the same rules; tests/integration/test_search_limits.py holds
the two together. Each limit sits well above real use and below what PostgreSQL can evaluate
(a jsonpath or tsquery of ~15,000 terms exceeds its stack depth). The SQL functions' DEFAULTs
are the search defaults below: tests/integration/test_sql_defaults.py holds those together.

Stored values (pgcontext.ingest.values applies them per record): a value is accepted only if
it comes back exactly from jsonb (or its int4/vector column) and the export's JSON.

The predicates return the reason as words (or None) for the faces that report per record,
and the `check_*` functions raise the exception a request gets, or return the value as a
plain Python int or float: callers pass that on, never what they were given.
"""

from __future__ import annotations

import math
import operator
from typing import Any

import numpy as np

from pgcontext.errors import ConfigError, QueryError

# --- search defaults (the SQL functions' DEFAULTs) ---------------------------------------
DEFAULT_K = 10
DEFAULT_EF_SEARCH = 40  # HNSW candidates per dense search (pgvector's default)
# Hybrid's dense side searches at least `candidates` deep anyway, so its ef_search default
# is the default candidates.
DEFAULT_HYBRID_EF_SEARCH = 100
DEFAULT_K1 = 0.9  # Anserini's BM25 defaults, the usual BEIR baseline
DEFAULT_B = 0.4
DEFAULT_RRF_K = 60  # Cormack et al.'s k for reciprocal rank fusion
DEFAULT_DENSE_WEIGHT = 1.0
DEFAULT_KEYWORD_WEIGHT = 1.0
DEFAULT_CANDIDATES = 100  # hybrid search: candidates per side
DEFAULT_MMR_LAMBDA = 0.5  # pgcontext.mmr: relevance and diversity weighed alike

# --- ingest and answers (the API's defaults; the CLI shows them) --------------------------
DEFAULT_MAX_BYTES = 50_000_000  # the most one input file (or JSONL line) may hold
DEFAULT_JOB_DOCUMENTS = 256  # documents per queue job
DEFAULT_JOB_CHARACTERS = 256 * 1000  # ... and characters: a job of long documents is cut
DEFAULT_LEASE_SECONDS = 60.0  # a claimed job's lease, renewed by the worker's heartbeat
DEFAULT_BACKOFF_SECONDS = 5.0  # the first wait before a failed job is tried again
DEFAULT_MAX_TOKENS = 256  # tokens a chat model may generate for one answer
MAX_JOB_DOCUMENTS = 100_000
MAX_SECONDS = 3600.0  # a worker's lease, backoff and poll interval

# --- search requests ---------------------------------------------------------------------
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

# Queries, and the prompts of context/ask (they are searched as queries).
MAX_QUERY_CHARS = 10_000  # ~1,500 words; BM25 handles ~5,000 terms at this length

K1_RANGE = (0.0, 100.0)  # BM25 term-frequency saturation (usual values 0.5-2)
B_RANGE = (0.0, 1.0)  # BM25 length normalisation, a fraction by definition
# RRF adds k to ranks counted from 1: 0 would still divide, below 0 not. Usual values are
# about 60; beyond 100,000 every rank scores the same to float precision.
RRF_K_RANGE = (1, 100_000)
MAX_WEIGHT = 1e6  # RRF side weights: finite, >= 0, not both 0

# --- context and answers -----------------------------------------------------------------
BUDGET_RANGE = (16, 1_000_000)  # tokens of an assembled context
DEFAULT_BUDGET_TOKENS = 2000
DEFAULT_CONTEXT_K = 20  # chunks retrieved before fitting the budget
MAX_ANSWER_TOKENS = 100_000  # tokens a chat model may generate for one answer

# --- stored values -----------------------------------------------------------------------
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
INT4_MAX = 2**31 - 1  # positions, spans and token counts (int4 columns)
MAX_JSON_DEPTH = 64  # levels of objects and arrays; the metadata object is level 1
MAX_METADATA_BYTES = 1_000_000  # JSON of one document's metadata (copied to every chunk)


def int_problem(name: str, value: Any, low: int, high: int) -> str | None:
    """Why `value` is not an integer in [low, high] (no bool, no float), or None."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        return f"{name} must be an integer, not {value!r}"
    if not low <= value <= high:
        return f"{name} must be between {low} and {high}, not {value}"
    return None


def check_int(name: str, value: Any, low: int, high: int, *, parameter: str | None = None) -> int:
    """`value` as a Python int (psycopg finds no SQL type for a numpy integer); ConfigError
    unless it is an integer in [low, high]. The error's `parameter` is `parameter`, or `name`
    when that is an identifier (a parameter's own name, not a label in words)."""
    problem = int_problem(name, value, low, high)
    if problem is not None:
        raise ConfigError(problem, parameter=parameter or _parameter(name))
    return operator.index(value)


def check_float(
    name: str, value: Any, low: float, high: float, *, parameter: str | None = None
) -> float:
    """`value` as a Python float; ConfigError unless it is a finite number in [low, high]
    (NaN refused, and bools: True is no number anyone means)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ConfigError(
            f"{name} must be a number, not {value!r}", parameter=parameter or _parameter(name)
        )
    if not (math.isfinite(value) and low <= value <= high):
        raise ConfigError(
            f"{name} must be a finite number between {low:g} and {high:g}, not {value}",
            parameter=parameter or _parameter(name),
        )
    return float(value)


def _parameter(name: str) -> str | None:
    """The API parameter a checked value is, when `name` is one (not a label in words)."""
    return name if name.isidentifier() else None


def check_query(query: Any) -> None:
    """Raise QueryError unless `query` is a string of at most MAX_QUERY_CHARS characters."""
    if not isinstance(query, str):
        raise QueryError(f"the query must be a string, not {type(query).__name__}")
    if len(query) > MAX_QUERY_CHARS:
        raise QueryError(
            f"the query has {len(query):,} characters, more than the limit of "
            f"{MAX_QUERY_CHARS:,}; shorten it (keep the words that matter)"
        )


def text_problem(value: str, fix: str = "give it in UTF-8") -> str | None:
    """Why PostgreSQL cannot take the string `value`, as words to follow its name; or None.

    A lone surrogate is either a byte that was not UTF-8 (a command-line argument or a file
    name, PEP 383 surrogateescape) or a JSON escape such as \\ud800: neither encodes as
    UTF-8. Text columns and jsonb reject NUL. `fix` ends the reason for text not in UTF-8.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = _bad_part(value[exc.start])
        return f"is not valid UTF-8 ({bad} at character {exc.start}); {fix}"
    if "\x00" in value:
        return "contains a NUL character, which PostgreSQL cannot store"
    return None


def _bad_part(char: str) -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: a byte that was not UTF-8
        return f"byte 0x{code - 0xDC00:02x}"
    return f"lone UTF-16 surrogate U+{code:04X}"


def vector_problem(vector: Any, name: str) -> str | None:
    """Why `vector` (named `name`) is no usable float32 vector for cosine, or None.

    Every component must be finite in float32, and so must the sum of their squares (pgvector
    sums them in float32), which must not be 0 either: cosine needs a direction.
    """
    try:
        wide = np.asarray(vector, dtype=np.float64).reshape(-1)
    except OverflowError:  # an integer beyond any double
        index = next(i for i, x in enumerate(vector) if _beyond_double(x))
        return f"{name} component {index} is {_number(vector[index])}, beyond float32"
    if wide.size == 0:
        return f"{name} is empty"
    with np.errstate(over="ignore", invalid="ignore"):
        narrow = wide.astype(np.float32)
        bad = np.flatnonzero(~np.isfinite(narrow))
        if bad.size:
            index = int(bad[0])
            if not math.isfinite(wide[index]):
                return f"{name} component {index} is {wide[index]}: NaN or infinite"
            flat = isinstance(vector, list | tuple) and len(vector) == wide.size
            shown = _number(vector[index]) if flat else repr(float(wide[index]))
            return f"{name} component {index} is {shown}, beyond float32"
        squared = np.dot(narrow, narrow)
    if squared == 0:
        return f"{name} is all zeros (or too close to zero): cosine similarity is undefined"
    if not np.isfinite(squared):
        return f"{name}'s components are too large: the sum of their squares overflows float32"
    return None


def check_query_vector(vector: Any) -> Any:
    """The query vector as float32, or QueryError if `vector_problem` finds one."""
    problem = vector_problem(vector, "the query vector")
    if problem is not None:
        raise QueryError(problem)
    return np.asarray(vector, dtype=np.float32).reshape(-1)


def _beyond_double(value: Any) -> bool:
    try:
        float(value)
    except OverflowError:
        return True
    return False


def _number(value: Any) -> str:
    return shown_int(value) if isinstance(value, int) else repr(value)


def shown_int(number: int) -> str:
    """The number itself when short, else its length (str() of a huge int may refuse)."""
    if number.bit_length() <= 132:  # at most 40 digits
        return str(number)
    return f"of about {int(number.bit_length() * math.log10(2)) + 1} digits"
