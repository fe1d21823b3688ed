"""The ingest queue in one process: enqueue, work, retry with backoff, fail, leases."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from pgcontext import ConfigError, SourceDocument, Store
from pgcontext.ingest import jobs
from pgcontext.ingest.worker import WorkerOptions
from tests.support.fake_embedder import FakeEmbedder

FAST = WorkerOptions(backoff_seconds=0.01, poll_seconds=0.02, lease_seconds=5)


def docs(n: int, prefix: str = "d") -> list[SourceDocument]:
    return [
        SourceDocument(f"{prefix}{i}", None, f"text of document {i} in a batch", {})
        for i in range(n)
    ]


def queue_rows(db_url: str) -> list[dict[str, Any]]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT id, status, attempts, last_error, run_after - created_at AS delay"
            " FROM pgcontext.ingest_queue ORDER BY id"
        ).fetchall()
    return [dict(zip(["id", "status", "attempts", "error", "delay"], r, strict=True)) for r in rows]


def test_enqueue_only_leaves_work_for_a_worker(store: Store, db_url: str) -> None:
    report = store.ingest("c", docs(10), enqueue_only=True, job_documents=3)
    assert report.queued_jobs == 4 and report.added == 0
    assert store.status()["queue"]["queued"] == 4
    assert store.search("document", collection="c", k=5) == []
    worked = store.worker(WorkerOptions(once=True, poll_seconds=0.02)).run()
    assert worked.added == 10
    assert {j["status"] for j in queue_rows(db_url)} == {"done"}
    assert len(store.search("document", collection="c", k=20)) == 10


def test_unchanged_documents_are_not_even_queued(store: Store, db_url: str) -> None:
    store.ingest("c", docs(6))
    before = len(queue_rows(db_url))
    report = store.ingest("c", docs(6))
    assert (report.unchanged, report.queued_jobs, report.chunks_written) == (6, 0, 0)
    assert len(queue_rows(db_url)) == before


def test_a_failing_embedder_is_retried_with_backoff(
    store: Store, db_url: str, fake_embedder: FakeEmbedder
) -> None:
    # One document: a job of several whose model fails on each alone is retried too, but
    # it spends more calls per attempt (see test_ingest_reports).
    fake_embedder.fail_next = 2
    report = store.ingest("c", docs(1), worker_options=FAST)
    assert report.ok and report.added == 1
    (job,) = queue_rows(db_url)
    assert (job["status"], job["attempts"]) == ("done", 3)
    assert "fake embedder failure" in job["error"]  # the last failure stays visible


def test_a_job_that_always_fails_ends_failed_and_can_be_retried(
    store: Store, db_url: str, fake_embedder: FakeEmbedder
) -> None:
    fake_embedder.fail_next = 1000
    report = store.ingest("c", docs(2), worker_options=FAST)
    assert not report.ok
    assert {p.source for p in report.problems} == {"d0", "d1"}
    assert all("fake embedder failure" in p.reason for p in report.problems)
    (job,) = queue_rows(db_url)
    assert (job["status"], job["attempts"]) == ("failed", 5)
    status = store.status()["queue"]
    assert status["failed"] == 1
    assert "fake embedder failure" in status["errors"][0]["error"]

    fake_embedder.fail_next = 0
    assert store.retry_failed("c") == 1
    store.worker(WorkerOptions(once=True, poll_seconds=0.02)).run()
    assert queue_rows(db_url)[0]["status"] == "done"
    assert len(store.search("document", collection="c", k=10)) == 2


def test_a_dead_workers_job_is_claimed_again_after_its_lease(store: Store, db_url: str) -> None:
    store.ingest("c", docs(4), enqueue_only=True)
    with psycopg.connect(db_url, autocommit=True) as conn:
        (ghost_job,) = jobs.claim(conn, "ghost", lease_seconds=0.2)
        assert jobs.claim(conn, "other") == []  # leased: nobody else may take it
    report = store.worker(WorkerOptions(once=True, poll_seconds=0.05)).run()
    assert report.added == 4
    (job,) = queue_rows(db_url)
    assert (job["id"], job["status"], job["attempts"]) == (ghost_job.id, "done", 2)
    with psycopg.connect(db_url, autocommit=True) as conn:
        # The ghost comes back: its lease is gone, so it may not mark the job done.
        assert not jobs.finish(conn, ghost_job.id, "ghost", {})


def test_released_jobs_go_back_without_using_an_attempt(store: Store, db_url: str) -> None:
    store.ingest("c", docs(2), enqueue_only=True)
    with psycopg.connect(db_url, autocommit=True) as conn:
        (job,) = jobs.claim(conn, "w1")
        assert jobs.release(conn, "w1", [job.id]) == 1
    (row,) = queue_rows(db_url)
    assert (row["status"], row["attempts"]) == ("queued", 0)


@pytest.mark.parametrize("attempts", [1, 2, 3])
def test_backoff_doubles_with_each_attempt(store: Store, db_url: str, attempts: int) -> None:
    store.ingest("c", docs(1), enqueue_only=True)
    with psycopg.connect(db_url, autocommit=True) as conn:
        for _ in range(attempts):
            conn.execute("UPDATE pgcontext.ingest_queue SET run_after = now()")
            (job,) = jobs.claim(conn, "w")
            status = jobs.fail(conn, job.id, "w", "boom", backoff_seconds=10)
            assert status == "queued"
        row = conn.execute(
            "SELECT extract(epoch FROM run_after - updated_at) FROM pgcontext.ingest_queue"
        ).fetchone()
    assert row is not None
    assert float(row[0]) == pytest.approx(10 * 2 ** (attempts - 1), abs=0.5)


def test_prune_cannot_go_with_enqueue_only(store: Store) -> None:
    with pytest.raises(ConfigError, match="prune needs the run to finish") as refused:
        store.ingest("c", docs(1), prune=True, enqueue_only=True)
    assert refused.value.parameter == "prune"  # the CLI names its flag
    assert store.collections() == []  # refused before anything was created
