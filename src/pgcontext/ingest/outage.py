"""A database outage as a worker lives it: one log line when it starts, one when it ends.

A daemon worker waits out any outage; a run that someone waits for (`ingest`,
`worker --once`) gives up after `limit_seconds` with a DatabaseError, keeping what it wrote.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from pgcontext.db.connection import error_text
from pgcontext.errors import DatabaseUnavailableError

T = TypeVar("T")
Conn = psycopg.Connection[Any]

log = logging.getLogger(__name__)

MAX_RETRY_WAIT_SECONDS = 10.0
_MIN_CONNECT_WAIT_SECONDS = 0.1
_STOP_CHECK_SECONDS = 0.25  # how soon a stopping run notices, while waiting for a connection


class Outage:
    """Shared by a worker's threads: any of them may notice the database is gone."""

    def __init__(
        self,
        limit_seconds: float | None,
        first_wait: float,
        clock: Callable[[], float] = time.monotonic,
        stop: threading.Event | None = None,
    ) -> None:
        self.limit_seconds = limit_seconds
        # Set when the run is ending (Ctrl-C, stop()): a wait for a connection ends with it.
        self._stop = stop
        self._first_wait = max(first_wait, 0.05)
        self._clock = clock
        self._lock = threading.Lock()
        self._started: float | None = None
        self._wait = self._first_wait
        self.reason = ""

    @property
    def active(self) -> bool:
        return self._started is not None

    def begin(self, reason: str, attempt_started: float | None = None) -> None:
        """Note that the database failed (the outage counts from `attempt_started`)."""
        with self._lock:
            if self._started is not None:
                return
            self.reason = reason
            self._started = self._clock() if attempt_started is None else attempt_started
            self._wait = self._first_wait
        bound = f" for up to {self.limit_seconds:g} s" if self.limit_seconds else ""
        log.warning("database unavailable (%s); retrying%s", self.reason, bound)

    def end(self) -> None:
        """The database answered again: log how long it was away."""
        with self._lock:
            started, self._started = self._started, None
        if started is not None:
            log.warning("database available again after %.1f s", self._clock() - started)

    def retry_wait(self) -> float:
        """Seconds to wait before the next attempt; raises once the limit has passed."""
        with self._lock:
            started = self._clock() if self._started is None else self._started
            elapsed = self._clock() - started
            if self.limit_seconds is not None and elapsed >= self.limit_seconds:
                raise DatabaseUnavailableError(
                    f"the database has been unreachable for {elapsed:.0f} s, the most this "
                    f"run waits ({self.limit_seconds:g} s: db_wait_seconds, or "
                    f"PGCONTEXT_DB_WAIT_SECONDS): {self.reason}",
                    parameter="db_wait_seconds",
                )
            wait = self._wait
            self._wait = min(self._wait * 2, MAX_RETRY_WAIT_SECONDS)
        if self.limit_seconds is not None:
            wait = min(wait, self.limit_seconds - elapsed)
        return max(wait, 0.0)

    def connect_timeout(self, default: float) -> float:
        """How long one attempt may wait for a connection, so the limit is kept."""
        if self.limit_seconds is None:
            return default
        with self._lock:
            spent = 0.0 if self._started is None else self._clock() - self._started
        return max(min(default, self.limit_seconds - spent), _MIN_CONNECT_WAIT_SECONDS)

    def connection(self, pool: ConnectionPool) -> AbstractContextManager[Conn]:
        """A pooled connection, waited for no longer than the limit allows (nor past stop)."""
        timeout = self.connect_timeout(pool.timeout)
        if self._stop is None:
            return pool.connection(timeout=timeout)
        return self._stoppable_connection(pool, self._stop, timeout)

    @contextmanager
    def _stoppable_connection(
        self, pool: ConnectionPool, stop: threading.Event, timeout: float
    ) -> Iterator[Conn]:
        # The pool's own wait cannot be cut short: wait in slices, looking at `stop` between.
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                conn = pool.getconn(timeout=max(min(left, _STOP_CHECK_SECONDS), 0.01))
                break
            except PoolTimeout:
                if stop.is_set():
                    raise PoolTimeout("the run is stopping: no wait for a connection") from None
                if time.monotonic() >= deadline:
                    raise PoolTimeout(
                        f"couldn't get a connection after {timeout:.2f} sec"
                    ) from None
        try:
            with conn:  # as pool.connection(): commit, or roll back on an exception
                yield conn
        finally:
            pool.putconn(conn)

    def run(self, pool: ConnectionPool, step: Callable[[Conn], T]) -> T:
        """`step` on a pooled connection; while the database is away, again on a fresh one
        until the limit (then DatabaseUnavailableError). A step must be all or nothing:
        its writes in one transaction, its counts kept only once it returns."""
        while True:
            attempt = self._clock()
            try:
                with self.connection(pool) as conn:
                    result = step(conn)
            except psycopg.OperationalError as exc:
                if not self.active:
                    self.begin(unavailable_reason(exc, pool), attempt)
                time.sleep(self.retry_wait())  # raises past the limit
                continue
            self.end()
            return result


def unavailable_reason(exc: Exception, pool: ConnectionPool) -> str:
    """What is wrong with the database: a pool timeout does not say, a connection does."""
    conninfo = pool.conninfo
    conninfo = conninfo if isinstance(conninfo, str) else conninfo()
    if isinstance(exc, PoolTimeout):
        try:
            psycopg.connect(conninfo, connect_timeout=2).close()
        except psycopg.Error as direct:
            exc = direct
    # libpq's first line says it; the rest is a hint ("Is the server running ...?").
    return (error_text(exc, conninfo).splitlines() or [type(exc).__name__])[0]
