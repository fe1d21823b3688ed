"""The outage clock: backoff, the bound, and one log line at each end."""

from __future__ import annotations

import logging

import pytest

from pgcontext.errors import DatabaseUnavailableError
from pgcontext.ingest.outage import MAX_RETRY_WAIT_SECONDS, Outage


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_waits_double_up_to_the_cap_and_the_bound_ends_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    outage = Outage(limit_seconds=30, first_wait=1, clock=clock)
    assert outage.connect_timeout(60) == 30  # no attempt may outlast the bound
    for _ in range(3):  # three threads notice it: one line
        outage.begin("server closed the connection", attempt_started=98.0)
    waits = []
    for _ in range(6):
        waits.append(outage.retry_wait())
        clock.now += waits[-1]
    # Capped at 10 s, and the last wait ends at the bound: 30 s from 98.0 (not from 100.0).
    assert waits == [1, 2, 4, 8, MAX_RETRY_WAIT_SECONDS, 3]
    assert outage.connect_timeout(60) == pytest.approx(0.1)
    with pytest.raises(
        DatabaseUnavailableError, match=r"unreachable for 30 s.*closed the conn"
    ) as refused:
        outage.retry_wait()
    assert refused.value.parameter == "db_wait_seconds"  # the CLI names its flag
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert lines == ["database unavailable (server closed the connection); retrying for up to 30 s"]


def test_a_daemon_waits_for_ever_and_logs_the_duration(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    outage = Outage(limit_seconds=None, first_wait=1, clock=clock)
    outage.end()  # nothing to end: silent
    outage.begin("gone")
    clock.now += 3600
    assert outage.retry_wait() == 1 and outage.connect_timeout(30) == 30
    clock.now += 12.5
    outage.end()
    outage.end()
    assert not outage.active
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "database unavailable (gone); retrying",
        "database available again after 3612.5 s",
    ]
