"""Initial schema: embedding models, collections, documents, chunks, ingest queue.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.execute("CREATE SCHEMA IF NOT EXISTS pgcontext")
    op.execute(
        """
        CREATE TABLE pgcontext.embedding_model (
            id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            name        text NOT NULL,
            revision    text NOT NULL,
            dimensions  integer NOT NULL CHECK (dimensions BETWEEN 1 AND 16000),
            distance    text NOT NULL DEFAULT 'cosine' CHECK (distance IN ('cosine')),
            normalized  boolean NOT NULL,
            max_tokens  integer NOT NULL CHECK (max_tokens > 0),
            location    text NOT NULL,
            created_at  timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT embedding_model_name_revision_key UNIQUE (name, revision)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE pgcontext.collection (
            id                  integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            name                text NOT NULL
                CONSTRAINT collection_name_key UNIQUE
                CONSTRAINT collection_name_check CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'),
            model_id            integer NOT NULL REFERENCES pgcontext.embedding_model (id),
            chunk_tokens        integer NOT NULL CHECK (chunk_tokens >= 8),
            chunk_overlap       integer NOT NULL CHECK (chunk_overlap >= 0),
            text_search_config  regconfig NOT NULL DEFAULT 'english',
            vector_type         text NOT NULL DEFAULT 'vector'
                CHECK (vector_type IN ('vector', 'halfvec')),
            hnsw_m              integer NOT NULL DEFAULT 16 CHECK (hnsw_m BETWEEN 2 AND 100),
            hnsw_ef_construction integer NOT NULL DEFAULT 64
                CHECK (hnsw_ef_construction BETWEEN 4 AND 1000),
            metadata            jsonb NOT NULL DEFAULT '{}',
            created_at          timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    # tenant_id is reserved for row-level security on multi-tenant collections (planned).
    op.execute(
        """
        CREATE TABLE pgcontext.document (
            id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            collection_id integer NOT NULL
                REFERENCES pgcontext.collection (id) ON DELETE CASCADE,
            tenant_id     text,
            source        text NOT NULL,
            title         text,
            metadata      jsonb NOT NULL DEFAULT '{}',
            content_hash  text NOT NULL,
            char_count    integer NOT NULL,
            created_at    timestamptz NOT NULL DEFAULT now(),
            updated_at    timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT document_collection_source_key UNIQUE (collection_id, source)
        )
        """
    )
    # collection_id is repeated on chunk so each collection's HNSW index can be a partial
    # index on its own rows, with its own dimensions (expression index on a cast).
    op.execute(
        """
        CREATE TABLE pgcontext.chunk (
            id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            collection_id integer NOT NULL
                REFERENCES pgcontext.collection (id) ON DELETE CASCADE,
            document_id   bigint NOT NULL REFERENCES pgcontext.document (id) ON DELETE CASCADE,
            tenant_id     text,
            position      integer NOT NULL CHECK (position >= 0),
            text          text NOT NULL,
            text_hash     text NOT NULL,
            token_count   integer NOT NULL CHECK (token_count >= 0),
            char_start    integer NOT NULL,
            char_end      integer NOT NULL,
            metadata      jsonb NOT NULL DEFAULT '{}',
            ts_config     regconfig NOT NULL,
            tsv           tsvector GENERATED ALWAYS AS (to_tsvector(ts_config, text)) STORED,
            embedding     vector NOT NULL,
            CONSTRAINT chunk_document_position_key UNIQUE (document_id, position),
            CONSTRAINT chunk_span_check CHECK (char_start >= 0 AND char_end >= char_start)
        )
        """
    )
    op.execute("CREATE INDEX chunk_collection_idx ON pgcontext.chunk (collection_id)")
    op.execute("CREATE INDEX chunk_tsv_idx ON pgcontext.chunk USING gin (tsv)")
    op.execute(
        """
        CREATE TABLE pgcontext.ingest_queue (
            id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            collection_id integer NOT NULL
                REFERENCES pgcontext.collection (id) ON DELETE CASCADE,
            source        text NOT NULL,
            payload       jsonb NOT NULL DEFAULT '{}',
            status        text NOT NULL DEFAULT 'queued'
                CHECK (status IN ('queued', 'running', 'done', 'failed')),
            attempts      integer NOT NULL DEFAULT 0,
            max_attempts  integer NOT NULL DEFAULT 5 CHECK (max_attempts >= 1),
            run_after     timestamptz NOT NULL DEFAULT now(),
            lease_owner   text,
            leased_until  timestamptz,
            heartbeat_at  timestamptz,
            last_error    text,
            created_at    timestamptz NOT NULL DEFAULT now(),
            updated_at    timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        "CREATE INDEX ingest_queue_claim_idx ON pgcontext.ingest_queue (run_after) "
        "WHERE status IN ('queued', 'running')"
    )
    op.execute(
        "CREATE INDEX ingest_queue_collection_status_idx "
        "ON pgcontext.ingest_queue (collection_id, status)"
    )


def downgrade() -> None:
    # The sql/ functions are re-created on every upgrade; drop them first (plpgsql bodies
    # are not tracked as dependencies), then the tables, whose views go with CASCADE.
    op.execute(
        """
        DO $$
        DECLARE fn regprocedure;
        BEGIN
            FOR fn IN SELECT p.oid::regprocedure FROM pg_proc p
                      JOIN pg_namespace n ON n.oid = p.pronamespace
                      WHERE n.nspname = 'pgcontext'
            LOOP
                EXECUTE format('DROP FUNCTION %s CASCADE', fn);
            END LOOP;
        END $$
        """
    )
    op.execute("DROP TABLE IF EXISTS pgcontext.ingest_queue CASCADE")
    op.execute("DROP TABLE IF EXISTS pgcontext.chunk CASCADE")
    op.execute("DROP TABLE IF EXISTS pgcontext.document CASCADE")
    op.execute("DROP TABLE IF EXISTS pgcontext.collection CASCADE")
    op.execute("DROP TABLE IF EXISTS pgcontext.embedding_model CASCADE")
