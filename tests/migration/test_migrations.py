"""Migrations run both ways, and the migrated schema matches the SQLAlchemy models."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import psycopg
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from psycopg.types.json import Jsonb

from pgcontext import SourceDocument, Store
from pgcontext.config import Settings
from pgcontext.db import migrate
from pgcontext.db.connection import sqlalchemy_engine
from pgcontext.db.models import Base
from pgcontext.ingest import jobs
from pgcontext.ingest.worker import WorkerOptions
from tests.support.fake_embedder import FakeEmbedder

TABLES = {
    "embedding_model",
    "collection",
    "document",
    "chunk",
    "ingest_queue",
    "collection_stats",
    "term_stats",
    "document_tombstone",
    "queued_document",
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


def test_document_versions_downgrade_and_come_back(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO pgcontext.embedding_model (name, revision, dimensions, normalized,"
            " max_tokens, location) VALUES ('m', 'r', 3, true, 8, 'x')"
        )
        conn.execute(
            "INSERT INTO pgcontext.collection (name, model_id, chunk_tokens, chunk_overlap)"
            " SELECT 'c', id, 8, 0 FROM pgcontext.embedding_model"
        )
        for source in ("a", "b"):
            conn.execute(
                "INSERT INTO pgcontext.document (collection_id, source, content_hash, char_count)"
                " SELECT id, %s, 'h', 1 FROM pgcontext.collection",
                (source,),
            )
    migrate.downgrade(db_url, "0003")
    assert tables(db_url) == TABLES - {"document_tombstone", "queued_document"}
    assert not {"write_document", "delete_documents"} & functions(db_url)
    migrate.upgrade(db_url)
    assert tables(db_url) == TABLES
    with psycopg.connect(db_url) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM pgcontext.document")]
    assert len(set(versions)) == 2 and all(v > 0 for v in versions)  # each its own version


def test_upgrade_is_idempotent(db_url: str) -> None:
    migrate.upgrade(db_url)
    migrate.upgrade(db_url)
    assert tables(db_url) == TABLES


def test_models_match_the_migrated_schema(db_url: str) -> None:
    engine = sqlalchemy_engine(db_url)  # the engine pgcontext itself migrates with
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


def queue_a_job_the_0003_way(db_url: str, collection_id: int, texts: dict[str, str]) -> None:
    """A job as revisions before 0004 queued it: no versions, no queued_document rows."""
    payload = {
        "documents": [
            {"source": s, "title": None, "text": t, "metadata": {}} for s, t in texts.items()
        ]
    }
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO pgcontext.ingest_queue (collection_id, source, payload, run_id)"
            " VALUES (%s, %s, %s, 'old-run')",
            (collection_id, next(iter(texts)), Jsonb(payload)),
        )


def test_the_queue_still_works_after_downgrading_document_versions(
    store: Store, db_url: str
) -> None:
    collection_id = store.create_collection("c").id
    store.close()
    migrate.downgrade(db_url, "0003")
    queue_a_job_the_0003_way(db_url, collection_id, {"a": "text"})
    with psycopg.connect(db_url) as conn:
        (job,) = jobs.claim(conn, "w")
        assert jobs.finish(conn, job.id, "w", {"added": 1})
        assert jobs.fail(conn, job.id, "w", "gone") is None  # finished, not leased
        status = conn.execute(
            "SELECT status FROM pgcontext.ingest_queue WHERE id = %s", (job.id,)
        ).fetchone()
    assert status == ("done",)


def test_a_job_queued_before_document_versions_is_applied_after_the_upgrade(
    store: Store, db_url: str, settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    store.ingest("c", [SourceDocument("a", None, "stored text", {})])
    collection_id = store.collection("c").id
    store.close()
    migrate.downgrade(db_url, "0003")
    queue_a_job_the_0003_way(db_url, collection_id, {"a": "queued update", "b": "queued new"})
    migrate.upgrade(db_url)
    with Store.open(db_url, settings=settings, upgrade=False) as reopened:
        reopened.models.register_embedder(fake_embedder)
        # The queued update is known as pending: re-ingesting it waits instead of queuing.
        again = reopened.ingest(
            "c", [SourceDocument("a", None, "queued update", {})], enqueue_only=True
        )
        assert again.queued_jobs == 0
        worked = reopened.worker(WorkerOptions(once=True, poll_seconds=0.02)).run()
    assert (worked.updated, worked.added, worked.superseded) == (1, 1, 0)
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT d.source, c.text FROM pgcontext.document d"
            " JOIN pgcontext.chunk c ON c.document_id = d.id ORDER BY 1"
        ).fetchall()
        left = conn.execute("SELECT count(*) FROM pgcontext.queued_document").fetchone()
    assert rows == [("a", "queued update"), ("b", "queued new")]
    assert left == (0,)  # the finished job no longer lists its documents


# Functions allowed more than one signature (an overload is what CREATE OR REPLACE leaves
# behind when an argument list changes): none.
OVERLOADS_ALLOWED: set[str] = set()


def test_no_function_has_more_than_one_signature(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT p.proname, string_agg(p.oid::regprocedure::text, '; ') FROM pg_proc p"
            " WHERE p.pronamespace = 'pgcontext'::regnamespace"
            " GROUP BY p.proname HAVING count(*) > 1"
        ).fetchall()
    assert {name: signatures for name, signatures in rows if name not in OVERLOADS_ALLOWED} == {}


SEARCH_CALLS = {
    "search": "SELECT * FROM pgcontext.search('c', %(v)s::vector, 3)",
    "keyword_search": "SELECT * FROM pgcontext.keyword_search('c', 'cat garden', 3)",
    "hybrid_search": "SELECT * FROM pgcontext.hybrid_search('c', 'cat garden', %(v)s::vector, 3,"
    " NULL, 100, 60, 1, 1, 100)",
    "similar_to_chunk": "SELECT * FROM pgcontext.similar_to_chunk("
    "(SELECT min(id) FROM pgcontext.chunk), 2)",
    "similar_to_document": "SELECT * FROM pgcontext.similar_to_document('c', 'a', 2)",
    "mmr": "SELECT * FROM pgcontext.mmr(%(v)s::vector,"
    " ARRAY(SELECT id FROM pgcontext.chunk ORDER BY id), 2, 0.5)",
}


def search_results(db_url: str) -> dict[str, list[tuple[Any, ...]]]:
    vector = str([1.0] + [0.5] * 15)
    with psycopg.connect(db_url) as conn:
        return {
            name: conn.execute(query, {"v": vector}).fetchall()
            for name, query in SEARCH_CALLS.items()
        }


def search_hit_type(db_url: str) -> str | None:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT to_regtype('pgcontext.search_hit')::text").fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def test_search_functions_downgrade_to_their_0005_shape_and_come_back(
    store: Store, db_url: str
) -> None:
    store.ingest(
        "c",
        [
            SourceDocument("a", None, "The cat sat on the mat.", {}),
            SourceDocument("b", None, "A dog chased the cat around the garden.", {}),
            SourceDocument("c", None, "Databases store rows.", {}),
        ],
    )
    store.close()
    at_head = search_results(db_url)
    assert all(at_head.values())
    migrate.downgrade(db_url, "0005")
    assert search_hit_type(db_url) is None
    assert not {f for f in functions(db_url) if f.startswith("_")}  # the helpers are gone
    # The functions as 0005 had them answer the same calls with the same rows.
    assert search_results(db_url) == at_head
    migrate.upgrade(db_url)
    assert search_hit_type(db_url) == "pgcontext.search_hit"
    assert search_results(db_url) == at_head


def schema_facts(url: str) -> set[tuple[str, ...]]:
    """The CHECK constraints, column defaults and generated columns of schema pgcontext, as
    PostgreSQL prints them (so two spellings of one expression compare equal)."""
    with psycopg.connect(url) as conn:
        checks = conn.execute(
            "SELECT 'check', conrelid::regclass::text, conname, pg_get_constraintdef(oid)"
            " FROM pg_constraint WHERE connamespace = 'pgcontext'::regnamespace"
            " AND contype = 'c'"
        ).fetchall()
        columns = conn.execute(
            "SELECT 'column', table_name::text, column_name::text,"
            " coalesce(column_default::text, ''), coalesce(generation_expression::text, '')"
            " FROM information_schema.columns WHERE table_schema = 'pgcontext'"
            " AND (column_default IS NOT NULL OR generation_expression IS NOT NULL)"
            " AND table_name <> 'alembic_version'"
        ).fetchall()
    return set(checks) | set(columns)


def test_models_have_the_check_constraints_and_defaults_of_the_migrations(db_url: str) -> None:
    """alembic's comparison skips CHECK constraints and server defaults: a database made from
    the models alone must have the same ones as the migrated database."""
    parts = urlsplit(db_url)
    name = parts.path.lstrip("/") + "_models"  # beside this test's own database
    models_db = parts._replace(path=f"/{name}").geturl()
    with psycopg.connect(db_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with psycopg.connect(models_db, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION vector")
            conn.execute("CREATE SCHEMA pgcontext")
        engine = sqlalchemy_engine(models_db)
        try:
            Base.metadata.create_all(engine)
        finally:
            engine.dispose()
        from_models, migrated = schema_facts(models_db), schema_facts(db_url)
        assert len(migrated) > 30  # 14 CHECK constraints, 25 defaults, 1 generated column
        assert (from_models - migrated, migrated - from_models) == (set(), set())
    finally:
        with psycopg.connect(db_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
