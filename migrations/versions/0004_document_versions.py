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

import json

from alembic import op
from sqlalchemy import text

from pgcontext.ingest import jobs, writer

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE SEQUENCE pgcontext.document_version_seq")
    # A volatile default fills each existing row with its own value; unfinished jobs then
    # get newer ones (_version_unfinished_jobs).
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
    _version_unfinished_jobs()


def _version_unfinished_jobs() -> None:
    """Jobs queued (or running) before this revision carry the latest word on their
    documents: each document gets a version newer than every stored one, in job order,
    written into the payload and listed in queued_document, as an enqueue would have."""
    conn = op.get_bind()
    rows = conn.execute(
        text(
            "SELECT id, collection_id, payload FROM pgcontext.ingest_queue"
            " WHERE status IN ('queued', 'running') ORDER BY id"
        )
    ).fetchall()
    for job_id, collection_id, payload in rows:
        documents = jobs.decode_documents(payload)
        if not documents:
            continue
        versions = [
            int(v)
            for v in conn.execute(
                text(
                    "SELECT nextval('pgcontext.document_version_seq')"
                    " FROM generate_series(1, :n) ORDER BY 1"
                ),
                {"n": len(documents)},
            ).scalars()
        ]
        for listed_document, version in zip(payload["documents"], versions, strict=True):
            listed_document["version"] = version
        conn.execute(
            text("UPDATE pgcontext.ingest_queue SET payload = :payload WHERE id = :id"),
            {"payload": json.dumps(payload), "id": job_id},
        )
        # A source twice in one job: the later copy (the newer version) is the one listed.
        listed = {
            doc.source: (writer.content_hash(doc), version)
            for doc, version in zip(documents, versions, strict=True)
        }
        conn.execute(
            text(
                "INSERT INTO pgcontext.queued_document"
                " (job_id, collection_id, source, content_hash, version)"
                " VALUES (:job, :collection, :source, :hash, :version)"
            ),
            [
                {"job": job_id, "collection": collection_id, "source": s, "hash": h, "version": v}
                for s, (h, v) in listed.items()
            ],
        )


def downgrade() -> None:
    # The functions of sql/035 use these tables; the earlier revisions' files do not.
    op.execute("DROP FUNCTION IF EXISTS pgcontext.write_document CASCADE")
    op.execute("DROP FUNCTION IF EXISTS pgcontext.delete_documents CASCADE")
    op.execute("DROP FUNCTION IF EXISTS pgcontext.forget_done_job_documents CASCADE")
    op.execute("DROP FUNCTION IF EXISTS pgcontext.forget_tombstones CASCADE")
    op.execute("DROP TABLE pgcontext.queued_document")
    op.execute("DROP TABLE pgcontext.document_tombstone")
    op.execute("ALTER TABLE pgcontext.document DROP COLUMN version")
    op.execute("DROP SEQUENCE pgcontext.document_version_seq")
