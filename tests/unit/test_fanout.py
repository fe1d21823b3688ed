"""fan_out with plain processes: waits for all, and says whether any failed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pgcontext import fan_out
from pgcontext.ingest import fanout


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_every_child_succeeding_is_success() -> None:
    assert fan_out(python("pass"), 3) == 0


def test_one_child_failing_fails_the_whole(tmp_path: Path) -> None:
    # Each child takes a ticket: the first to arrive fails, after the others have ended.
    code = (
        "import os, sys, time\n"
        f"path = {str(tmp_path)!r} + '/ticket'\n"
        "try:\n"
        "    os.mkdir(path)\n"
        "except FileExistsError:\n"
        "    sys.exit(0)\n"
        "time.sleep(0.5)\n"
        "sys.exit(3)\n"
    )
    started = time.monotonic()
    assert fan_out(python(code), 3) == 1
    assert time.monotonic() - started >= 0.5  # it waited for the slow, failing one


def test_at_least_one_child() -> None:
    with pytest.raises(ValueError):
        fan_out(python("pass"), 0)


def test_a_signal_while_a_child_starts_reaches_that_child(monkeypatch: pytest.MonkeyPatch) -> None:
    # SIGTERM lands while the first child is being started, before it is on the parent's
    # list: it must still reach it (once), and no second child is started.
    start = fanout._start
    started: list[int] = []

    def start_under_signal(command: list[str]) -> subprocess.Popen[bytes]:
        os.kill(os.getpid(), signal.SIGTERM)
        child = start(command)
        started.append(child.pid)
        return child

    monkeypatch.setattr(fanout, "_start", start_under_signal)
    began = time.monotonic()
    code = "import signal, sys, time\nsignal.signal(signal.SIGTERM, lambda *a: sys.exit(7))\n"
    assert fan_out(python(code + "time.sleep(20)"), 2) == 1  # the child's exit code 7
    assert time.monotonic() - began < 15
    assert len(started) == 1
