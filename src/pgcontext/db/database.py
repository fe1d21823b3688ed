"""Which database a Store opens, brought to the schema this version needs."""

from __future__ import annotations

from psycopg_pool import ConnectionPool

from pgcontext.config import Settings
from pgcontext.db import migrate
from pgcontext.db.connection import open_pool
from pgcontext.db.embedded import embedded_url


def open_database(
    url: str | None, settings: Settings, upgrade: bool | None
) -> tuple[str, ConnectionPool]:
    """(url, pool) of `url`, else the settings' database URL, else the embedded server.

    The embedded database is migrated automatically; an external one only with
    `upgrade=True` (otherwise an old schema is an error that says what to run)."""
    embedded = url is None and settings.database_url is None
    url = url or settings.database_url or embedded_url(settings.home)
    if upgrade or (upgrade is None and embedded):
        migrate.upgrade(url)
    else:
        migrate.check_schema(url)
    return url, open_pool(url)
