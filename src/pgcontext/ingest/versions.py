"""Version tickets: each input takes one just before it is read (sql/035_document_versions.sql).

Content read later then always carries a newer version than content read earlier, however
long either waits before its job is queued or worked, so the write of older content loses.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any, TypeGuard

import psycopg
from psycopg_pool import ConnectionPool

from pgcontext.ingest.documents import SourceDocument, SourceProblem
from pgcontext.ingest.outage import Outage, unavailable_reason

_NEXT = "SELECT nextval('pgcontext.document_version_seq')"


class VersionTickets:
    """Takes tickets, one round trip each, on one pooled connection held (in autocommit)
    from the first ticket until `close`; waits out an outage as `outage` allows."""

    def __init__(self, pool: ConnectionPool, outage: Outage) -> None:
        self._pool = pool
        self._outage = outage
        self._conn: psycopg.Connection[Any] | None = None

    def take(self) -> int:
        while True:
            attempt = time.monotonic()
            try:
                row = self._connection().execute(_NEXT).fetchone()
            except psycopg.OperationalError as exc:
                self.close()
                if not self._outage.active:
                    self._outage.begin(unavailable_reason(exc, self._pool), attempt)
                time.sleep(self._outage.retry_wait())  # raises past the limit
                continue
            self._outage.end()
            assert row is not None
            return int(row[0])

    def close(self) -> None:
        """Give the connection back to the pool."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if not conn.closed:
            conn.autocommit = False  # as the pool hands them out
        self._pool.putconn(conn)

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None:
            conn = self._pool.getconn(timeout=self._outage.connect_timeout(self._pool.timeout))
            conn.autocommit = True  # nextval needs no transaction: one round trip
            self._conn = conn
        return self._conn


def ticketed(
    items: Iterable[SourceDocument | SourceProblem], tickets: VersionTickets, *, stamp: bool
) -> Iterator[SourceDocument | SourceProblem]:
    """`items`, the tickets' connection given back when they end (or are dropped). With
    `stamp`, documents handed over without a ticket (the Python API) get one as they come."""
    try:
        for item in items:
            if stamp and _unticketed(item):
                item = replace(item, version=tickets.take())
            yield item
    finally:
        tickets.close()


def _unticketed(item: SourceDocument | SourceProblem) -> TypeGuard[SourceDocument]:
    # A document with its own chunks is imported: an import batch takes its own versions.
    return isinstance(item, SourceDocument) and item.version is None and not item.chunks
