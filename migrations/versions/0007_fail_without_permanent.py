"""pgcontext.fail_ingest_job without its `permanent` argument.

No caller ever passed true (a job fails for good once its attempts are spent), so the
argument went from Python in issue 10; here its old signature is dropped, and sql/ creates
the function anew without it right after the migrations. The downgrade restores the 0006
function as it was.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "DROP FUNCTION IF EXISTS pgcontext.fail_ingest_job("
        "bigint, text, text, double precision, boolean)"
    )


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION IF EXISTS pgcontext.fail_ingest_job(bigint, text, text, double precision)"
    )
    op.execute(
        """
        CREATE FUNCTION pgcontext.fail_ingest_job(
            job_id bigint, worker text, error text, backoff_seconds double precision DEFAULT 5,
            permanent boolean DEFAULT false
        ) RETURNS text
        LANGUAGE sql
        AS $fn$
            UPDATE pgcontext.ingest_queue
            SET status = CASE WHEN permanent OR attempts >= max_attempts
                              THEN 'failed' ELSE 'queued' END,
                run_after = now() + make_interval(
                    secs => least(3600, backoff_seconds * power(2, greatest(attempts - 1, 0)))),
                last_error = error, lease_owner = NULL, leased_until = NULL, updated_at = now()
            WHERE id = job_id AND lease_owner = worker AND status = 'running'
            RETURNING status;
        $fn$
        """
    )
