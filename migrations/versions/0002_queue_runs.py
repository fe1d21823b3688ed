"""Ingest queue: runs (the jobs of one `ingest` call) and per-job results.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE pgcontext.ingest_queue ADD COLUMN run_id text")
    # What processing a job did: counts, the sources it saw, the inputs it could not index.
    op.execute("ALTER TABLE pgcontext.ingest_queue ADD COLUMN result jsonb NOT NULL DEFAULT '{}'")
    op.execute("CREATE INDEX ingest_queue_run_idx ON pgcontext.ingest_queue (run_id, status)")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS pgcontext.ingest_queue_run_idx")
    op.execute("ALTER TABLE pgcontext.ingest_queue DROP COLUMN result")
    op.execute("ALTER TABLE pgcontext.ingest_queue DROP COLUMN run_id")
