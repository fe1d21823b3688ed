"""The catalog: embedding models and collections, and each collection's HNSW index."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from pgcontext.arguments import check_text
from pgcontext.embed.base import ModelSpec
from pgcontext.errors import (
    CollectionExistsError,
    CollectionNotFoundError,
    ConfigError,
    ModelMismatchError,
    PgContextError,
)
from pgcontext.limits import INT4_MAX, check_int

Conn = psycopg.Connection[Any]

# Used with fullmatch: with match, "$" would also match before a trailing newline.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
VECTOR_TYPES = ("vector", "halfvec")  # the first is the default
MIN_CHUNK_TOKENS = 8
DEFAULT_TEXT_SEARCH_CONFIG = "english"
DEFAULT_HNSW_M = 16
DEFAULT_HNSW_EF_CONSTRUCTION = 64
# HNSW indexes cap dimensions: 2,000 for vector, 4,000 for halfvec (pgvector docs).
MAX_INDEXED_DIMENSIONS = {"vector": 2000, "halfvec": 4000}
_TYPE_SQL = {"vector": sql.SQL("vector"), "halfvec": sql.SQL("halfvec")}
_OPS_SQL = {"vector": sql.SQL("vector_cosine_ops"), "halfvec": sql.SQL("halfvec_cosine_ops")}


@dataclass(frozen=True)
class CollectionSettings:
    """What a collection is created with; fixed for its life (changing them means re-ingesting).

    None means not given: the default below for a new collection; for an existing one, its
    own value. A value given for an existing collection must equal its own (see `check_applies`).
    """

    chunk_tokens: int | None = None  # default: the model's own maximum
    chunk_overlap: int | None = None  # default: an eighth of the chunk size
    text_search_config: str | None = None  # default: DEFAULT_TEXT_SEARCH_CONFIG
    vector_type: str | None = None  # default: "vector"
    hnsw_m: int | None = None  # default: 16
    hnsw_ef_construction: int | None = None  # default: 64

    def __post_init__(self) -> None:
        """Refuse a value no collection could have, so a command does the same on every run
        (a 0 used to mean the default on creation, then differ from the collection's own)."""
        for name in _SETTING_NAMES:
            with _naming(name):
                self._check(name, getattr(self, name))

    def _check(self, name: str, value: Any) -> None:
        label = _SETTING_NAMES[name]
        if value is None:
            return
        if name == "text_search_config":
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"{label} must be a name such as 'english', not {value!r}")
            check_text(value, label)
        elif name == "vector_type":
            if value not in VECTOR_TYPES:
                raise ConfigError(f"{label} {value!r} is not one of {', '.join(VECTOR_TYPES)}")
        else:
            low = MIN_CHUNK_TOKENS if name == "chunk_tokens" else 0
            check_int(label, value, low, INT4_MAX)
            if name == "chunk_overlap" and self.chunk_tokens is not None:
                _check_overlap(value, self.chunk_tokens)

    def for_model(self, spec: ModelSpec) -> CollectionSettings:
        """Every setting resolved (defaults filled in) for a new collection of model `spec`."""
        chunk_tokens = spec.max_tokens if self.chunk_tokens is None else self.chunk_tokens
        return CollectionSettings(
            chunk_tokens=chunk_tokens,
            chunk_overlap=chunk_tokens // 8 if self.chunk_overlap is None else self.chunk_overlap,
            text_search_config=self.text_search_config or DEFAULT_TEXT_SEARCH_CONFIG,
            vector_type=self.vector_type or VECTOR_TYPES[0],
            hnsw_m=DEFAULT_HNSW_M if self.hnsw_m is None else self.hnsw_m,
            hnsw_ef_construction=(
                DEFAULT_HNSW_EF_CONSTRUCTION
                if self.hnsw_ef_construction is None
                else self.hnsw_ef_construction
            ),
        )


# What each setting is called in messages: what it is, and its field (the API parameter;
# the CLI maps it to its flag).
_SETTING_NAMES = {
    "chunk_tokens": "chunk size (chunk_tokens)",
    "chunk_overlap": "chunk overlap (chunk_overlap)",
    "text_search_config": "text search language (text_search_config)",
    "vector_type": "vector type (vector_type)",
    "hnsw_m": "HNSW m (hnsw_m)",
    "hnsw_ef_construction": "HNSW ef_construction (hnsw_ef_construction)",
}


@contextmanager
def _naming(parameter: str) -> Iterator[None]:
    """Errors raised inside name `parameter`, unless they name one already."""
    try:
        yield
    except PgContextError as exc:
        if exc.parameter is None:
            exc.parameter = parameter
        raise


@dataclass(frozen=True)
class CollectionInfo:
    id: int
    name: str
    model: ModelSpec
    chunk_tokens: int
    chunk_overlap: int
    text_search_config: str
    vector_type: str
    metadata: dict[str, Any] = field(default_factory=dict)
    hnsw_m: int = DEFAULT_HNSW_M
    hnsw_ef_construction: int = DEFAULT_HNSW_EF_CONSTRUCTION

    def check_applies(self, settings: CollectionSettings) -> None:
        """Refuse settings given for this existing collection that differ from its own.

        They are fixed at creation, so a different value would be silently ignored.
        """
        for name, label in _SETTING_NAMES.items():
            wanted, have = getattr(settings, name), getattr(self, name)
            if wanted is not None and wanted != have:
                raise CollectionExistsError(
                    f"collection {self.name!r} exists with {label} {have}, not {wanted}: "
                    "settings are fixed when a collection is created; leave the setting "
                    "out, or ingest into a new collection (or drop this one first)",
                    parameter=name,
                )


def validate_name(name: str) -> str:
    if not isinstance(name, str):
        raise ConfigError(
            f"a collection name must be a string, not {type(name).__name__}", parameter="collection"
        )
    check_text(name, "collection name")
    if not NAME_PATTERN.fullmatch(name):
        raise ConfigError(
            f"collection name {name!r} is invalid: use 1-63 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return name


def register_model(conn: Conn, spec: ModelSpec) -> int:
    """The model's row id, inserting it the first time this exact function is seen."""
    row = conn.execute(
        """
        INSERT INTO pgcontext.embedding_model
            (name, revision, dimensions, normalized, max_tokens, location)
        VALUES (%s, %s, %s, %s, %s, %s)
        ON CONFLICT (name, revision) DO UPDATE SET location = EXCLUDED.location
        RETURNING id, dimensions
        """,
        (
            spec.name,
            spec.revision,
            spec.dimensions,
            spec.normalized,
            spec.max_tokens,
            spec.location,
        ),
    ).fetchone()
    assert row is not None
    return int(row[0])


def create_collection(
    conn: Conn, name: str, spec: ModelSpec, settings: CollectionSettings | None = None
) -> CollectionInfo:
    """Create a collection and its HNSW index in one transaction; idempotent for equal settings."""
    validate_name(name)
    settings = with_known_language(conn, settings or CollectionSettings())
    resolved = settings.for_model(spec)
    _check_settings(spec, resolved)
    with conn.transaction():
        # Two ingests creating one new collection: the second waits here, then finds it.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('pgcontext.collection'), 0)")
        existing = find_collection(conn, name)
        if existing is not None:
            require_model(existing, spec)
            existing.check_applies(settings)
            return existing
        model_id = register_model(conn, spec)
        row = conn.execute(
            """
            INSERT INTO pgcontext.collection (name, model_id, chunk_tokens, chunk_overlap,
                text_search_config, vector_type, hnsw_m, hnsw_ef_construction)
            VALUES (%s, %s, %s, %s, %s::regconfig, %s, %s, %s)
            RETURNING id
            """,
            (
                name,
                model_id,
                resolved.chunk_tokens,
                resolved.chunk_overlap,
                resolved.text_search_config,
                resolved.vector_type,
                resolved.hnsw_m,
                resolved.hnsw_ef_construction,
            ),
        ).fetchone()
        assert row is not None
        _create_hnsw_index(conn, int(row[0]), spec.dimensions, resolved)
    info = find_collection(conn, name)
    assert info is not None
    return info


def _check_settings(spec: ModelSpec, settings: CollectionSettings) -> None:
    """Check resolved settings (see `CollectionSettings.for_model`) against the model."""
    vector_type, chunk_tokens, overlap = (
        settings.vector_type,
        settings.chunk_tokens,
        settings.chunk_overlap,
    )
    assert vector_type is not None and chunk_tokens is not None and overlap is not None
    if vector_type not in VECTOR_TYPES:
        raise ConfigError(f"vector type {vector_type!r} is not one of {', '.join(VECTOR_TYPES)}")
    limit = MAX_INDEXED_DIMENSIONS[vector_type]
    if spec.dimensions > limit:
        raise ConfigError(
            f"model {spec.name} has {spec.dimensions} dimensions; an HNSW index on "
            f"{vector_type} holds at most {limit}: choose halfvec or another model"
        )
    if not MIN_CHUNK_TOKENS <= chunk_tokens <= spec.max_tokens:
        raise ConfigError(
            f"chunk size {chunk_tokens} tokens is outside {MIN_CHUNK_TOKENS}..{spec.max_tokens}, "
            f"the most that model {spec.name} reads",
            parameter="chunk_tokens",
        )
    _check_overlap(overlap, chunk_tokens)
    m, ef = settings.hnsw_m, settings.hnsw_ef_construction
    assert m is not None and ef is not None
    if not (2 <= m <= 100 and 4 <= ef <= 1000 and ef >= 2 * m):  # the table's and pgvector's
        raise ConfigError(
            f"HNSW m {m} and ef_construction {ef} must be 2..100 and 4..1000, "
            "with ef_construction at least 2 * m"
        )


def _check_overlap(overlap: int, chunk_tokens: int) -> None:
    if not 0 <= overlap < chunk_tokens // 2:
        raise ConfigError(
            f"chunk overlap {overlap} must be at least 0 and under half the "
            f"chunk size ({chunk_tokens // 2})",
            parameter="chunk_overlap",
        )


def with_known_language(conn: Conn, settings: CollectionSettings) -> CollectionSettings:
    """`settings` with its text search language as the server names it ('English' and
    'pg_catalog.english' are 'english'), so a collection compares equal to how it was made;
    a language the server does not know is a ConfigError."""
    given = settings.text_search_config
    if given is None:
        return settings
    return replace(settings, text_search_config=_known_text_search_config(conn, given))


def _known_text_search_config(conn: Conn, config: str) -> str:
    try:
        with conn.transaction():  # a savepoint: a refused name leaves the caller's work alone
            row = conn.execute("SELECT %s::regconfig::text", (config,)).fetchone()
    except (psycopg.errors.ProgrammingError, psycopg.errors.DataError):
        known = conn.execute("SELECT string_agg(cfgname, ', ' ORDER BY cfgname) FROM pg_ts_config")
        listing = known.fetchone()
        raise ConfigError(
            f"{_SETTING_NAMES['text_search_config']} {config!r} is unknown to this server; "
            f"choose one of: {listing[0] if listing else '?'}",
            parameter="text_search_config",
        ) from None
    assert row is not None
    return str(row[0])


def _create_hnsw_index(conn: Conn, collection_id: int, dims: int, s: CollectionSettings) -> None:
    # A partial expression index: this collection's rows, cast to its own dimensions.
    # Identifiers and literals are composed by psycopg; the ints come from our own rows.
    vector_type = s.vector_type or VECTOR_TYPES[0]
    conn.execute(
        sql.SQL(
            "CREATE INDEX {index} ON pgcontext.chunk USING hnsw "
            "((embedding::{vtype}({dims})) {ops}) WITH (m = {m}, ef_construction = {ef}) "
            "WHERE collection_id = {cid}"
        ).format(
            index=sql.Identifier(hnsw_index_name(collection_id)),
            vtype=_TYPE_SQL[vector_type],
            dims=sql.Literal(dims),
            ops=_OPS_SQL[vector_type],
            m=sql.Literal(s.hnsw_m),
            ef=sql.Literal(s.hnsw_ef_construction),
            cid=sql.Literal(collection_id),
        )
    )


def hnsw_index_name(collection_id: int) -> str:
    return f"chunk_embedding_hnsw_{collection_id}"


_SELECT = """
    SELECT c.id, c.name, c.chunk_tokens, c.chunk_overlap,
           c.text_search_config::text AS text_search_config, c.vector_type, c.metadata,
           c.hnsw_m, c.hnsw_ef_construction,
           m.name AS model_name, m.revision, m.dimensions, m.normalized, m.max_tokens,
           m.location
    FROM pgcontext.collection c JOIN pgcontext.embedding_model m ON m.id = c.model_id
"""


def find_collection(conn: Conn, name: str) -> CollectionInfo | None:
    validate_name(name)  # every lookup by name passes here: a bad name is refused clearly
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(_SELECT + " WHERE c.name = %s", (name,)).fetchone()
    return None if row is None else _info(row)


def get_collection(conn: Conn, name: str) -> CollectionInfo:
    info = find_collection(conn, name)
    if info is None:
        known = [c.name for c in list_collections(conn)]
        listing = ", ".join(known) if known else "none yet"
        raise CollectionNotFoundError(
            f"no collection named {name!r} (collections: {listing}); create it with "
            f"`pgcontext ingest PATH --collection {name}`"
        )
    return info


def list_collections(conn: Conn) -> list[CollectionInfo]:
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(_SELECT + " ORDER BY c.name").fetchall()
    return [_info(row) for row in rows]


def drop_collection(conn: Conn, name: str) -> bool:
    """Remove a collection with its documents, chunks, queue and index."""
    with conn.transaction():
        info = find_collection(conn, name)
        if info is None:
            return False
        conn.execute(
            sql.SQL("DROP INDEX IF EXISTS pgcontext.{}").format(
                sql.Identifier(hnsw_index_name(info.id))
            )
        )
        conn.execute("DELETE FROM pgcontext.collection WHERE id = %s", (info.id,))
    return True


def update_metadata(conn: Conn, name: str, patch: Mapping[str, Any]) -> None:
    """Merge `patch` into the metadata of the collection `name`."""
    info = get_collection(conn, name)
    conn.execute(
        "UPDATE pgcontext.collection SET metadata = metadata || %s WHERE id = %s",
        (Jsonb(dict(patch)), info.id),
    )


def _info(row: dict[str, Any]) -> CollectionInfo:
    """A row of `_SELECT`: the collection's columns by their field names, the model's too
    (its name as model_name)."""
    spec = ModelSpec(
        **{f.name: row["model_name" if f.name == "name" else f.name] for f in fields(ModelSpec)}
    )
    own = (f.name for f in fields(CollectionInfo) if f.name != "model")
    return CollectionInfo(model=spec, **{name: row[name] for name in own})


def require_model(collection: CollectionInfo, spec: ModelSpec) -> None:
    """Embeddings from another function are not comparable: refuse, naming both models."""
    if not collection.model.same_function(spec):
        raise ModelMismatchError(
            f"collection {collection.name!r} was embedded with {collection.model.describe()}; "
            f"the model in use is {spec.describe()}. Use the collection's model (it is loaded "
            "automatically when no model is named) or ingest into a new collection"
        )
