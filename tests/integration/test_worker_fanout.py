"""`pgcontext worker --concurrency N` as a supervisor sees it: the parent passes SIGTERM on,
waits for every child (no orphan left), and its exit code says whether any failed."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from tests.integration.test_worker_processes import (
    counts,
    documents,
    plugin_store,
    start_worker,
    wait_for,
)


def children(parent: subprocess.Popen[bytes]) -> list[int]:
    path = Path(f"/proc/{parent.pid}/task/{parent.pid}/children")
    return [int(pid) for pid in path.read_text().split()] if path.exists() else []


def alive(pid: int) -> bool:
    """Whether `pid` still exists (a zombie counts: nobody has waited for it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def start_fanout(
    db_url: str, tmp_path: Path, *args: str
) -> tuple[subprocess.Popen[bytes], list[int]]:
    with plugin_store(db_url, tmp_path) as store:
        store.ingest("c", documents(20), enqueue_only=True, job_documents=2)
    parent = start_worker(db_url, "--concurrency", "2", *args, delay=0.3)
    wait_for(lambda: len(children(parent)) == 2 and counts(db_url).get("done", 0) >= 1)
    return parent, children(parent)


def test_sigterm_to_the_parent_stops_every_worker_and_waits_for_them(
    db_url: str, tmp_path: Path
) -> None:
    parent, pids = start_fanout(db_url, tmp_path, "--lease", "30")
    parent.send_signal(signal.SIGTERM)
    out, err = parent.communicate(timeout=60)
    assert parent.returncode == 0, err.decode()
    assert not [pid for pid in pids if alive(pid)], "a worker outlived its parent"
    # Each child finished its job in hand (nothing left leased) and printed its report.
    assert "running" not in counts(db_url)
    assert out.decode().count("queue: ") == 2
    assert err.decode().count("finishing the job in hand") == 2  # one signal each


def test_a_worker_that_dies_makes_the_exit_code_non_zero(db_url: str, tmp_path: Path) -> None:
    parent, pids = start_fanout(db_url, tmp_path, "--once", "--lease", "2")
    os.kill(pids[0], signal.SIGKILL)
    _, err = parent.communicate(timeout=120)  # the other finishes the queue, then exits
    assert parent.returncode == 1
    assert f"worker process {pids[0]} ended with signal 9" in err.decode()
    assert not [pid for pid in pids if alive(pid)]
    assert counts(db_url) == {"done": 10}  # the dead worker's job was taken over
