"""Migrations run both ways, and the migrated schema matches the SQLAlchemy models."""

from __future__ import annotations

from typing import Any

import psycopg
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from pgcontext.db import migrate
from pgcontext.db.connection import sqlalchemy_url
from pgcontext.db.models import Base

TABLES = {
    "embedding_model",
    "collection",
    "document",
    "chunk",
    "ingest_queue",
    "collection_stats",
    "term_stats",
}


def tables(db_url: str) -> set[str]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'pgcontext'"
        ).fetchall()
    return {row[0] for row in rows} - {"alembic_version"}


def functions(db_url: str) -> set[str]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
            " WHERE n.nspname = 'pgcontext'"
        ).fetchall()
    return {row[0] for row in rows}


def test_downgrade_removes_everything_and_upgrade_restores_it(db_url: str) -> None:
    assert tables(db_url) == TABLES
    assert "search" in functions(db_url)
    migrate.downgrade(db_url, "base")
    assert tables(db_url) == set()
    assert functions(db_url) == set()
    migrate.upgrade(db_url)
    assert tables(db_url) == TABLES
    assert migrate.check_schema(db_url) == migrate.head_revision()


def test_upgrade_is_idempotent(db_url: str) -> None:
    migrate.upgrade(db_url)
    migrate.upgrade(db_url)
    assert tables(db_url) == TABLES


def test_models_match_the_migrated_schema(db_url: str) -> None:
    engine = create_engine(sqlalchemy_url(db_url))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn,
                opts={
                    "include_schemas": True,
                    "include_name": _ours,
                    "compare_type": True,
                },
            )
            diff: list[Any] = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    # Per-collection HNSW indexes are created at run time, not by migrations or models.
    diff = [d for d in diff if not _is_runtime_index(d)]
    assert diff == []


def _ours(name: str | None, type_: str, parent: object) -> bool:
    if type_ == "schema":
        return name == "pgcontext"
    return not (type_ == "table" and name == "alembic_version")


def _is_runtime_index(entry: Any) -> bool:
    return (
        isinstance(entry, tuple)
        and entry[0] == "remove_index"
        and entry[1].name.startswith("chunk_embedding_hnsw_")
    )
