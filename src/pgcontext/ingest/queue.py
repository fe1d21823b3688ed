"""The ingest queue in Postgres: enqueue units of work, claim them, finish or fail them.

The state changes are SQL functions (sql/030_ingest_queue.sql); this module only calls
them and (de)serialises the documents a job carries.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from pgcontext.ingest.sources import SourceDocument

Conn = psycopg.Connection[Any]

DEFAULT_LEASE_SECONDS = 60.0
DEFAULT_BACKOFF_SECONDS = 5.0


@dataclass(frozen=True)
class Job:
    id: int
    collection_id: int
    run_id: str | None
    attempts: int
    max_attempts: int
    documents: list[SourceDocument]


def new_run_id() -> str:
    return uuid.uuid4().hex


def encode_documents(documents: Sequence[SourceDocument]) -> dict[str, Any]:
    return {
        "documents": [
            {"source": d.source, "title": d.title, "text": d.text, "metadata": d.metadata}
            for d in documents
        ]
    }


def decode_documents(payload: dict[str, Any]) -> list[SourceDocument]:
    return [
        SourceDocument(d["source"], d.get("title"), d["text"], d.get("metadata") or {})
        for d in payload.get("documents", [])
    ]


def enqueue(
    conn: Conn,
    collection_id: int,
    units: Iterable[Sequence[SourceDocument]],
    *,
    run_id: str,
    max_attempts: int = 5,
) -> int:
    """Insert one job per unit; returns how many. The caller owns the transaction."""
    rows = [
        (collection_id, unit[0].source, Jsonb(encode_documents(unit)), max_attempts, run_id)
        for unit in units
        if unit
    ]
    if rows:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO pgcontext.ingest_queue"
                " (collection_id, source, payload, max_attempts, run_id)"
                " VALUES (%s, %s, %s, %s, %s)",
                rows,
            )
    return len(rows)


def claim(
    conn: Conn,
    worker: str,
    *,
    max_jobs: int = 1,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    run_id: str | None = None,
) -> list[Job]:
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT * FROM pgcontext.claim_ingest_jobs(%s, %s, %s, %s)",
            (worker, max_jobs, lease_seconds, run_id),
        ).fetchall()
    return [
        Job(
            id=row["id"],
            collection_id=row["collection_id"],
            run_id=row["run_id"],
            attempts=row["attempts"],
            max_attempts=row["max_attempts"],
            documents=decode_documents(row["payload"]),
        )
        for row in rows
    ]


def heartbeat(conn: Conn, worker: str, job_ids: Sequence[int], lease_seconds: float) -> int:
    row = conn.execute(
        "SELECT pgcontext.heartbeat_ingest_jobs(%s, %s, %s)",
        (worker, list(job_ids), lease_seconds),
    ).fetchone()
    return int(row[0]) if row else 0


def finish(conn: Conn, job_id: int, worker: str, result: dict[str, Any]) -> bool:
    """Mark the job done; call inside the transaction that wrote its chunks."""
    row = conn.execute(
        "SELECT pgcontext.finish_ingest_job(%s, %s, %s)", (job_id, worker, Jsonb(result))
    ).fetchone()
    return bool(row and row[0])


def fail(
    conn: Conn,
    job_id: int,
    worker: str,
    error: str,
    *,
    backoff_seconds: float = DEFAULT_BACKOFF_SECONDS,
    permanent: bool = False,
) -> str | None:
    """Record a failed attempt; returns the new status ('queued' to retry, or 'failed')."""
    row = conn.execute(
        "SELECT pgcontext.fail_ingest_job(%s, %s, %s, %s, %s)",
        (job_id, worker, error, backoff_seconds, permanent),
    ).fetchone()
    return None if row is None else row[0]


def release(conn: Conn, worker: str, job_ids: Sequence[int]) -> int:
    row = conn.execute(
        "SELECT pgcontext.release_ingest_jobs(%s, %s)", (worker, list(job_ids))
    ).fetchone()
    return int(row[0]) if row else 0


def retry_failed(conn: Conn, collection: str | None = None) -> int:
    row = conn.execute("SELECT pgcontext.retry_failed_ingest_jobs(%s)", (collection,)).fetchone()
    return int(row[0]) if row else 0


def run_progress(conn: Conn, run_id: str) -> dict[str, int]:
    """Job counts by status for one run."""
    rows = conn.execute(
        "SELECT status, count(*) FROM pgcontext.ingest_queue WHERE run_id = %s GROUP BY status",
        (run_id,),
    ).fetchall()
    counts = {status: int(n) for status, n in rows}
    return {s: counts.get(s, 0) for s in ("queued", "running", "done", "failed")}


def run_results(conn: Conn, run_id: str) -> list[dict[str, Any]]:
    """Results of a run's finished jobs, and the errors of its failed ones."""
    rows = conn.execute(
        "SELECT status, result, last_error, payload FROM pgcontext.ingest_queue"
        " WHERE run_id = %s AND status IN ('done', 'failed') ORDER BY id",
        (run_id,),
    ).fetchall()
    return [
        {"status": status, "result": result, "error": error, "payload": payload}
        for status, result, error, payload in rows
    ]
