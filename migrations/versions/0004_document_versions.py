"""Document versions: queued work never replaces newer state with older.

A sequence hands out versions when work is queued; each document keeps the version of its
stored content; a deleted document leaves a tombstone with the version of its deletion;
each queued document is listed with its content hash, so an identical ingest can wait for
it instead of doing it again. The rule itself is in sql/035_document_versions.sql.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE SEQUENCE pgcontext.document_version_seq")
    # A volatile default fills each existing row with its own value. Jobs queued before this
    # revision carry no version and count as the oldest (0): they never replace a document.
    op.execute(
        "ALTER TABLE pgcontext.document ADD COLUMN version bigint NOT NULL"
        " DEFAULT nextval('pgcontext.document_version_seq')"
    )
    op.execute(
        """
        CREATE TABLE pgcontext.document_tombstone (
            collection_id integer NOT NULL
                REFERENCES pgcontext.collection (id) ON DELETE CASCADE,
            source        text NOT NULL,
            version       bigint NOT NULL,
            deleted_at    timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (collection_id, source)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE pgcontext.queued_document (
            job_id        bigint NOT NULL
                REFERENCES pgcontext.ingest_queue (id) ON DELETE CASCADE,
            collection_id integer NOT NULL
                REFERENCES pgcontext.collection (id) ON DELETE CASCADE,
            source        text NOT NULL,
            content_hash  text NOT NULL,
            version       bigint NOT NULL,
            PRIMARY KEY (job_id, source)
        )
        """
    )
    op.execute(
        "CREATE INDEX queued_document_source_idx"
        " ON pgcontext.queued_document (collection_id, source)"
    )


def downgrade() -> None:
    # The functions of sql/035 use these tables; the earlier revisions' files do not.
    op.execute("DROP FUNCTION IF EXISTS pgcontext.write_document CASCADE")
    op.execute("DROP FUNCTION IF EXISTS pgcontext.delete_documents CASCADE")
    op.execute("DROP TABLE pgcontext.queued_document")
    op.execute("DROP TABLE pgcontext.document_tombstone")
    op.execute("ALTER TABLE pgcontext.document DROP COLUMN version")
    op.execute("DROP SEQUENCE pgcontext.document_version_seq")
