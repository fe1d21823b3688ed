"""Version tickets: each input takes one just before it is read (sql/035_document_versions.sql).

Content read later then always carries a newer version than content read earlier, however
long either waits before its job is queued or worked, so the write of older content loses.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace

from psycopg_pool import ConnectionPool

from pgcontext.ingest import writer
from pgcontext.ingest.outage import Outage
from pgcontext.ingest.sources import SourceDocument, SourceProblem


class VersionTickets:
    """Takes tickets on a pooled connection, waiting out an outage as `outage` allows."""

    def __init__(self, pool: ConnectionPool, outage: Outage) -> None:
        self._pool = pool
        self._outage = outage

    def take(self) -> int:
        return self._outage.run(self._pool, lambda conn: writer.next_versions(conn, 1)[0])


def stamped(
    items: Iterable[SourceDocument | SourceProblem], tickets: VersionTickets
) -> Iterator[SourceDocument | SourceProblem]:
    """Documents handed over without a ticket (the Python API) get one as they come."""
    for item in items:
        if isinstance(item, SourceDocument) and item.version is None and not item.chunks:
            item = replace(item, version=tickets.take())
        yield item
