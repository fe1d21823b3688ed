"""Where `export --out` writes: the file a link names, a FIFO or device as a stream, a file's
permissions kept, long names, and no temporary file left by a failure or a signal."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from pgcontext import ExportError, SourceDocument, Store

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def kb(store: Store) -> Store:
    store.ingest("kb", [SourceDocument(f"d{i}", None, f"text number {i}", {}) for i in range(3)])
    return store


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_a_symlink_is_kept_and_its_target_written(kb: Store, tmp_path: Path) -> None:
    target = tmp_path / "real" / "kb.jsonl"
    target.parent.mkdir()
    target.write_text("old\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)

    assert kb.export("kb", link) == 3
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert len(target.read_text().splitlines()) == 3
    assert leftovers(tmp_path) == [] and leftovers(target.parent) == []

    dangling = tmp_path / "dangling.jsonl"
    dangling.symlink_to(tmp_path / "real" / "new.jsonl")
    assert kb.export("kb", dangling) == 3
    assert dangling.is_symlink() and len(dangling.read_text().splitlines()) == 3


def test_a_link_to_a_device_writes_through_it(kb: Store, tmp_path: Path) -> None:
    null = tmp_path / "null"
    null.symlink_to("/dev/null")
    assert kb.export("kb", null) == 3
    assert null.is_symlink() and stat.S_ISCHR(os.stat("/dev/null").st_mode)

    full = tmp_path / "full"
    full.symlink_to("/dev/full")
    with pytest.raises(ExportError, match=r"No space left on device.*not atomically.*incomplete"):
        kb.export("kb", full)
    assert full.is_symlink() and stat.S_ISCHR(os.stat("/dev/full").st_mode)
    assert leftovers(tmp_path) == []


def test_a_fifo_is_written_as_a_stream(kb: Store, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    assert kb.export("kb", fifo) == 3
    reader.join(timeout=30)
    assert len(received[0].splitlines()) == 3
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_an_existing_file_keeps_its_mode_and_owner(kb: Store, tmp_path: Path) -> None:
    out = tmp_path / "kb.jsonl"
    out.write_text("old\n")
    out.chmod(0o600)
    if os.geteuid() == 0:
        os.chown(out, 12345, 23456)
    kb.export("kb", out)
    status = out.stat()
    assert stat.S_IMODE(status.st_mode) == 0o600
    if os.geteuid() == 0:
        assert (status.st_uid, status.st_gid) == (12345, 23456)
    assert len(out.read_text().splitlines()) == 3

    fresh = tmp_path / "fresh.jsonl"
    previous = os.umask(0o027)
    try:
        kb.export("kb", fresh)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o640


def test_a_long_file_name_is_no_problem(kb: Store, tmp_path: Path) -> None:
    out = tmp_path / ("x" * 245 + ".jsonl")  # 251 characters, under the usual 255
    assert kb.export("kb", out) == 3
    assert len(out.read_text().splitlines()) == 3 and leftovers(tmp_path) == []


def test_a_directory_or_a_link_loop_is_a_clear_error(kb: Store, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="is a directory"):
        kb.export("kb", tmp_path)
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(ExportError, match="symbolic links"):
        kb.export("kb", loop)
    assert loop.is_symlink() and leftovers(tmp_path) == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_export_leaves_no_temporary_file(
    kb: Store, db_url: str, tmp_path: Path, signum: int
) -> None:
    out = tmp_path / "kb.jsonl"
    env = {
        **os.environ,
        "PGCONTEXT_DATABASE_URL": db_url,
        "PGCONTEXT_HOME": str(tmp_path / "home"),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
    }
    # A lock held elsewhere keeps the export waiting with its temporary file open.
    with psycopg.connect(db_url) as locker:
        locker.execute("LOCK TABLE pgcontext.chunk IN ACCESS EXCLUSIVE MODE")
        export = subprocess.Popen(
            [sys.executable, "-m", "pgcontext.cli", "export", "-c", "kb", "--out", str(out)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 60
            while not leftovers(tmp_path):
                assert export.poll() is None, export.communicate()
                assert time.monotonic() < deadline, "the export never started"
                time.sleep(0.05)
            time.sleep(0.3)  # into the query's wait
            export.send_signal(signum)
            _, err = export.communicate(timeout=30)
        finally:
            if export.poll() is None:
                export.kill()
                export.wait(timeout=10)
    assert export.returncode != 0
    assert b"Traceback" not in err and b"interrupted" in err
    assert leftovers(tmp_path) == [] and not out.exists()
