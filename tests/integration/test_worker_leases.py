"""A worker's leases against a real database: lost, its write is rolled back whole; kept
alive by the heartbeat while a long job works, so no other worker claims it."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import psycopg
import pytest

from pgcontext import SourceDocument, Store
from pgcontext.ingest import jobs
from pgcontext.ingest.worker import WorkerOptions
from tests.support.fake_embedder import FakeEmbedder


def docs(n: int) -> list[SourceDocument]:
    return [SourceDocument(f"d{i}", None, f"text of document {i}", {}) for i in range(n)]


def stored_rows(db_url: str) -> tuple[int, int]:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM pgcontext.document),"
            " (SELECT count(*) FROM pgcontext.chunk)"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def job_row(db_url: str) -> dict[str, Any]:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT status, lease_owner, attempts, heartbeat_at FROM pgcontext.ingest_queue"
        ).fetchone()
    assert row is not None
    return dict(zip(["status", "owner", "attempts", "heartbeat_at"], row, strict=True))


def test_a_job_taken_over_while_it_was_prepared_is_rolled_back_whole(
    store: Store,
    db_url: str,
    fake_embedder: FakeEmbedder,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store.ingest("c", docs(3), enqueue_only=True)
    embed = fake_embedder.embed_documents

    def embed_while_another_takes_over(texts: list[str]) -> Any:
        # This worker is presumed dead: its lease runs out and another worker claims the job.
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("UPDATE pgcontext.ingest_queue SET leased_until = now()")
            assert [job.id for job in jobs.claim(conn, "other", lease_seconds=60)]
        return embed(texts)

    monkeypatch.setattr(fake_embedder, "embed_documents", embed_while_another_takes_over)
    caplog.set_level(logging.WARNING, logger="pgcontext.ingest.worker")
    worker = store.worker(WorkerOptions(poll_seconds=0.02, lease_seconds=30))
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while "taken over by another worker" not in caplog.text:
            assert time.monotonic() < deadline, "the worker never tried to write the job"
            time.sleep(0.02)
    finally:
        worker.stop()
        thread.join(timeout=30)
    assert not thread.is_alive()
    # Nothing of the job's three documents was written: not a row, not a chunk.
    assert stored_rows(db_url) == (0, 0)
    assert worker.report.added == worker.report.chunks_written == 0
    taken = job_row(db_url)
    assert (taken["status"], taken["owner"], taken["attempts"]) == ("running", "other", 2)


LEASE = 1.5  # the heartbeat renews it every LEASE / 3 seconds


def test_a_long_jobs_lease_is_renewed_while_it_works(
    store: Store, db_url: str, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.ingest("c", docs(2), enqueue_only=True)
    embed = fake_embedder.embed_documents
    taken: list[jobs.Job] = []

    def embed_for_three_leases(texts: list[str]) -> Any:
        # Another worker tries to claim the job all along: it must never get it.
        deadline = time.monotonic() + 3 * LEASE
        with psycopg.connect(db_url, autocommit=True) as conn:
            while time.monotonic() < deadline:
                taken.extend(jobs.claim(conn, "other", lease_seconds=60))
                time.sleep(0.05)
        return embed(texts)

    monkeypatch.setattr(fake_embedder, "embed_documents", embed_for_three_leases)
    report = store.worker(WorkerOptions(once=True, poll_seconds=0.02, lease_seconds=LEASE)).run()
    assert taken == []
    assert report.added == 2
    done = job_row(db_url)
    assert (done["status"], done["attempts"]) == ("done", 1)  # never claimed again
    assert done["heartbeat_at"] is not None
    assert stored_rows(db_url)[0] == 2
