"""Worker fan-out: several worker processes under one parent that passes on stop signals
and waits for every one of them (`pgcontext worker --concurrency N`)."""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_PR_SET_PDEATHSIG = 1  # prctl(2): the signal a child gets when its parent dies


def fan_out(command: Sequence[str], count: int) -> int:
    """Run `count` copies of `command` (a worker's command line) until all have exited.

    SIGINT and SIGTERM sent to this process are passed on to every child still running: a
    worker finishes the job in hand on the first and aborts it on the second. The children
    run in a process group of their own, so a terminal's Ctrl-C reaches each of them once,
    through here; on Linux a child also gets SIGTERM if this process dies without passing
    anything on (SIGKILL), so none is left orphaned. Returns 0 when every child exited with
    0, else 1 (each failure is logged).
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, not {count}")
    children: list[subprocess.Popen[bytes]] = []
    received: list[tuple[int, int]] = []  # each signal, and how many children it reached

    def forward(signum: int, frame: Any) -> None:
        received.append((signum, len(children)))
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in STOP_SIGNALS}
    try:
        for _ in range(count):
            if received:  # stopped while starting: start no more
                break
            child = _start(command)
            children.append(child)
            # A signal handled while this child was starting did not reach it: pass it on
            # now (exactly once: one handled after the append reached it already).
            for signum, reached in received:
                if reached < len(children):
                    child.send_signal(signum)
        codes = [child.wait() for child in children]
    except BaseException:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    failed = [(child.pid, code) for child, code in zip(children, codes, strict=True) if code]
    for pid, code in failed:
        reason = f"signal {-code}" if code < 0 else f"exit code {code}"
        log.error("worker process %d ended with %s", pid, reason)
    return 1 if failed else 0


def _start(command: Sequence[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        list(command),
        process_group=0,
        preexec_fn=functools.partial(_in_child, os.getpid()),
    )


def _in_child(parent: int) -> None:
    """In the child before exec (Linux): SIGTERM when the parent dies, even if it already
    has."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # it died before prctl could take effect
            os.kill(os.getpid(), signal.SIGTERM)
