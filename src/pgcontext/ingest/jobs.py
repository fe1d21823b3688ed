"""The ingest queue's jobs in Postgres: enqueue units of work, claim them, finish or fail them.

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

from pgcontext.ingest import writer
from pgcontext.ingest.documents import SourceDocument
from pgcontext.limits import DEFAULT_BACKOFF_SECONDS, DEFAULT_LEASE_SECONDS

Conn = psycopg.Connection[Any]


@dataclass(frozen=True)
class Job:
    id: int
    collection_id: int
    run_id: str | None
    attempts: int
    max_attempts: int
    documents: list[SourceDocument]
    versions: dict[str, int]
    """Each document's version, taken when it was queued (absent: queued before versions)."""
    hashes: dict[str, str]
    """Content hashes of the documents checked and hashed when queued (see encode_documents)."""


@dataclass(frozen=True)
class QueuedVersion:
    """The newest unfinished (queued or running) job that carries a source."""

    job_id: int
    run_id: str | None
    content_hash: str
    version: int


@dataclass(frozen=True)
class SourceState:
    """What the database holds for one source, seen in one snapshot."""

    stored: writer.StoredDocument | None
    pending: QueuedVersion | None
    """The newest queued or running job for the source, if newer than what is stored
    (or deleted): the job that will decide the source's content unless newer work comes."""
    newest_unfinished: int | None
    """The newest version in any job not done (failed ones may be retried)."""
    deleted: int | None = None
    """The version of the source's deletion, if it was deleted and not written since."""

    @property
    def newest_written(self) -> int:
        """The newest version stored or deleted (-1: none): older content loses to it."""
        return max(self.deleted or -1, self.stored.version if self.stored else -1)

    def unchanged(self, content_hash: str) -> bool:
        """Stored with this content, and no unfinished job carries a newer version (which
        a write of this content must supersede, as this is the latest word)."""
        stored = self.stored
        return (
            stored is not None
            and stored.content_hash == content_hash
            and (self.newest_unfinished is None or self.newest_unfinished <= stored.version)
        )


# Enqueues of one collection take turns (see `lock_collection`).
_ENQUEUE_LOCK_CLASS = "pgcontext.enqueue"


def new_run_id() -> str:
    return uuid.uuid4().hex


def encode_documents(
    documents: Sequence[writer.HashedDocument], versions: Sequence[int]
) -> dict[str, Any]:
    """A job's payload. A document's content_hash says it was checked as storable and
    hashed when queued: the worker does neither again (work queued otherwise, e.g. by
    older versions, leaves it out and is checked and hashed by the worker)."""
    return {
        "documents": [
            {
                "source": h.document.source,
                "title": h.document.title,
                "text": h.document.text,
                "metadata": h.document.metadata,
                "version": version,
                "content_hash": h.content_hash,
            }
            for h, version in zip(documents, versions, strict=True)
        ]
    }


def decode_documents(payload: dict[str, Any]) -> list[SourceDocument]:
    return [
        SourceDocument(d["source"], d.get("title"), d["text"], d.get("metadata") or {})
        for d in payload.get("documents", [])
    ]


def decode_versions(payload: dict[str, Any]) -> dict[str, int]:
    """Version by source; a job queued before versions existed counts as the oldest (0)."""
    return {d["source"]: int(d.get("version") or 0) for d in payload.get("documents", [])}


def decode_hashes(payload: dict[str, Any]) -> dict[str, str]:
    """Content hash by source, for the documents that carry one."""
    return {
        d["source"]: d["content_hash"] for d in payload.get("documents", []) if "content_hash" in d
    }


def lock_collection(conn: Conn, collection_id: int) -> None:
    """Until the transaction ends, no other enqueue of this collection looks or queues:
    two identical runs at once cannot both miss each other's jobs."""
    conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext(%s), %s)", (_ENQUEUE_LOCK_CLASS, collection_id)
    )


def source_states(conn: Conn, collection_id: int, sources: Sequence[str]) -> dict[str, SourceState]:
    """Stored documents and unfinished jobs of `sources`, in one statement (one snapshot:
    a job that finishes meanwhile is seen either queued or stored, never neither)."""
    rows = conn.execute(
        """
        SELECT s.source, d.id, d.content_hash, d.version, t.version,
               p.job_id, p.run_id, p.content_hash, p.version,
               (SELECT max(qd.version) FROM pgcontext.queued_document qd
                JOIN pgcontext.ingest_queue q ON q.id = qd.job_id
                WHERE qd.collection_id = %(c)s AND qd.source = s.source
                  AND q.status <> 'done')
        FROM unnest(%(sources)s::text[]) AS s(source)
        LEFT JOIN pgcontext.document d ON d.collection_id = %(c)s AND d.source = s.source
        LEFT JOIN pgcontext.document_tombstone t
            ON t.collection_id = %(c)s AND t.source = s.source
        LEFT JOIN LATERAL (
            SELECT qd.job_id, q.run_id, qd.content_hash, qd.version
            FROM pgcontext.queued_document qd JOIN pgcontext.ingest_queue q ON q.id = qd.job_id
            WHERE qd.collection_id = %(c)s AND qd.source = s.source
              AND q.status IN ('queued', 'running')
            ORDER BY qd.version DESC LIMIT 1
        ) p ON p.version > greatest(d.version, t.version, -1)
        """,
        {"c": collection_id, "sources": list(dict.fromkeys(sources))},
    ).fetchall()
    states = {}
    for source, doc_id, digest, version, deleted, *queued, newest in rows:
        stored = None if doc_id is None else writer.StoredDocument(doc_id, digest, version)
        pending = None if queued[0] is None else QueuedVersion(*queued)
        states[source] = SourceState(stored, pending, newest, deleted)
    return states


def enqueue(
    conn: Conn,
    collection_id: int,
    units: Iterable[Sequence[writer.HashedDocument]],
    *,
    run_id: str,
    max_attempts: int = 5,
) -> int:
    """Insert one job per unit, each document with the version it was read with (a new one
    if it has none); returns how many jobs. The caller owns the transaction."""
    count = 0
    for unit in units:
        if not unit:
            continue
        versions = _versions(conn, unit)
        row = conn.execute(
            "INSERT INTO pgcontext.ingest_queue"
            " (collection_id, source, payload, max_attempts, run_id)"
            " VALUES (%s, %s, %s, %s, %s) RETURNING id",
            (
                collection_id,
                unit[0].document.source,
                Jsonb(encode_documents(unit, versions)),
                max_attempts,
                run_id,
            ),
        ).fetchone()
        assert row is not None
        with conn.cursor() as cur:
            # A source twice in one unit: the later copy (the newer version) is the one listed.
            cur.executemany(
                "INSERT INTO pgcontext.queued_document"
                " (job_id, collection_id, source, content_hash, version)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (job_id, source) DO UPDATE"
                " SET content_hash = EXCLUDED.content_hash, version = EXCLUDED.version",
                [
                    (row[0], collection_id, h.document.source, h.content_hash, version)
                    for h, version in zip(unit, versions, strict=True)
                ],
            )
        count += 1
    return count


def _versions(conn: Conn, unit: Sequence[writer.HashedDocument]) -> list[int]:
    missing = iter(writer.next_versions(conn, sum(h.document.version is None for h in unit)))
    return [next(missing) if h.document.version is None else h.document.version for h in unit]


def claim(
    conn: Conn,
    worker: str,
    *,
    max_jobs: int = 1,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    run_id: str | None = None,
    job_ids: Sequence[int] | None = None,
) -> list[Job]:
    """Claim up to `max_jobs` jobs, of `run_id` and among `job_ids` if given."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT * FROM pgcontext.claim_ingest_jobs_among(%s, %s, %s, %s, %s)",
            (worker, max_jobs, lease_seconds, run_id, None if job_ids is None else list(job_ids)),
        ).fetchall()
    return [Job(*(row[c] for c in _JOB_COLUMNS), *_decode(row["payload"])) for row in rows]


_JOB_COLUMNS = ("id", "collection_id", "run_id", "attempts", "max_attempts")


def _decode(payload: dict[str, Any]) -> tuple[Any, ...]:
    """The fields of a Job its payload holds: documents, versions, hashes."""
    return decode_documents(payload), decode_versions(payload), decode_hashes(payload)


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
) -> str | None:
    """Record a failed attempt; returns the new status ('queued' to retry, or 'failed' once
    its attempts are spent)."""
    row = conn.execute(
        "SELECT pgcontext.fail_ingest_job(%s, %s, %s, %s)",
        (job_id, worker, error, backoff_seconds),
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


def job_outcomes(conn: Conn, job_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Status, result and last error of some jobs, by id."""
    rows = conn.execute(
        "SELECT id, status, result, last_error FROM pgcontext.ingest_queue WHERE id = ANY(%s)",
        (list(job_ids),),
    ).fetchall()
    return {
        job_id: {"status": status, "result": result, "error": error}
        for job_id, status, result, error in rows
    }
