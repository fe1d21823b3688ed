"""What `status` shows: the collections' sizes and the ingest queue, read from SQL views."""

from __future__ import annotations

from typing import Any

from psycopg_pool import ConnectionPool

QUEUE_STATES = ("queued", "running", "done", "failed")
COLLECTIONS = (
    "SELECT name, model, documents, chunks, dimensions FROM pgcontext.collection_status"
    " ORDER BY name"
)
QUEUE = "SELECT status, count(*) FROM pgcontext.ingest_queue GROUP BY status"
# Errors of jobs still failing or waiting to retry; done jobs keep theirs in the table as
# history, but they are no longer a problem.
ERRORS = (
    "SELECT q.id, c.name, q.source, q.status, q.attempts, q.last_error"
    " FROM pgcontext.ingest_queue q JOIN pgcontext.collection c ON c.id = q.collection_id"
    " WHERE q.last_error IS NOT NULL AND q.status <> 'done'"
    " ORDER BY q.updated_at DESC LIMIT 10"
)
COLLECTION_KEYS = ("name", "model", "documents", "chunks", "dimensions")
ERROR_KEYS = ("job", "collection", "source", "status", "attempts", "error")


def status(pool: ConnectionPool) -> dict[str, Any]:
    """The shape of `pgcontext status --json`: {"collections": [...], "queue": {...}}."""
    with pool.connection() as conn:
        collections = conn.execute(COLLECTIONS).fetchall()
        counts: dict[str, int] = dict(conn.execute(QUEUE).fetchall())
        errors = conn.execute(ERRORS).fetchall()
    return {
        "collections": [dict(zip(COLLECTION_KEYS, row, strict=True)) for row in collections],
        "queue": {
            **{state: int(counts.get(state, 0)) for state in QUEUE_STATES},
            "errors": [dict(zip(ERROR_KEYS, row, strict=True)) for row in errors],
        },
    }
