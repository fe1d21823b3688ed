"""fan_out with plain processes: waits for all, and says whether any failed."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from pgcontext import fan_out


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
