"""BM25 statistics per collection: chunk count, total length, and each term's chunk frequency.

Kept up to date by statement triggers on pgcontext.chunk (sql/040_bm25.sql); filled here
from the chunks that exist already.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE OR REPLACE FUNCTION pgcontext.tsvector_length(tsvector) RETURNS integer
        LANGUAGE sql IMMUTABLE PARALLEL SAFE
        AS $$ SELECT coalesce(sum(coalesce(array_length(positions, 1), 1)), 0)::integer
              FROM unnest($1) $$
        """
    )
    op.execute(
        """
        CREATE TABLE pgcontext.collection_stats (
            collection_id integer PRIMARY KEY
                REFERENCES pgcontext.collection (id) ON DELETE CASCADE,
            chunks        bigint NOT NULL DEFAULT 0,
            tokens        bigint NOT NULL DEFAULT 0
        )
        """
    )
    op.execute(
        """
        CREATE TABLE pgcontext.term_stats (
            collection_id integer NOT NULL
                REFERENCES pgcontext.collection (id) ON DELETE CASCADE,
            term          text NOT NULL,
            chunks        integer NOT NULL,
            PRIMARY KEY (collection_id, term)
        )
        """
    )
    op.execute(
        """
        INSERT INTO pgcontext.collection_stats (collection_id, chunks, tokens)
        SELECT collection_id, count(*), coalesce(sum(pgcontext.tsvector_length(tsv)), 0)
        FROM pgcontext.chunk GROUP BY collection_id
        """
    )
    op.execute(
        """
        INSERT INTO pgcontext.term_stats (collection_id, term, chunks)
        SELECT c.collection_id, l.lexeme, count(*)
        FROM pgcontext.chunk c, unnest(c.tsv) AS l GROUP BY 1, 2
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS chunk_bm25_insert ON pgcontext.chunk")
    op.execute("DROP TRIGGER IF EXISTS chunk_bm25_delete ON pgcontext.chunk")
    op.execute("DROP TABLE pgcontext.term_stats")
    op.execute("DROP TABLE pgcontext.collection_stats")
    op.execute("DROP FUNCTION pgcontext.tsvector_length(tsvector) CASCADE")
