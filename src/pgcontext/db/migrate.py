"""Schema upgrades: alembic migrations for tables, then the CREATE OR REPLACE files in sql/."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError, OperationalError

from pgcontext.db.connection import error_text, sqlalchemy_engine
from pgcontext.db.resources import resource_dir, sql_files
from pgcontext.errors import DatabaseError, SchemaError
from pgcontext.redact import redact_url

log = logging.getLogger(__name__)

# Any constant works: it only serialises concurrent upgrades (several workers starting at once).
_UPGRADE_LOCK = 0x7067_6374_7874


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(resource_dir("migrations")))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "migrations/ has no revisions"
    return head


def current_revision(conn: Connection) -> str | None:
    context = MigrationContext.configure(
        conn, opts={"version_table": "alembic_version", "version_table_schema": "pgcontext"}
    )
    return context.get_current_revision()


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the tables to `revision`, then (re)apply every function and view in sql/."""
    with _begin(url) as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _UPGRADE_LOCK})
        # alembic keeps its version table in our schema, so the schema comes first.
        conn.execute(text("CREATE SCHEMA IF NOT EXISTS pgcontext"))
        config = alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
        apply_sql_files(conn)


def downgrade(url: str, revision: str) -> None:
    with _begin(url) as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _UPGRADE_LOCK})
        config = alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, revision)


def apply_sql_files(conn: Connection) -> None:
    # Straight to psycopg without parameters: the file goes as one script, `%` left alone.
    driver = conn.connection.driver_connection
    assert driver is not None
    for path in sql_files():
        log.debug("applying %s", path.name)
        driver.execute(path.read_text(encoding="utf-8").encode())


def check_schema(url: str) -> str | None:
    """The schema's revision if it is current; raises SchemaError if it is older or newer."""
    with _begin(url) as conn:
        current = current_revision(conn)
    head = head_revision()
    if current == head:
        return current
    if current is None:
        raise SchemaError(
            f"the database {redact_url(url)} has no pgcontext schema: run `pgcontext db upgrade`"
        )
    raise SchemaError(
        f"the database {redact_url(url)} is at schema revision {current}, this pgcontext "
        f"expects {head}: run `pgcontext db upgrade`"
    )


@contextmanager
def _begin(url: str) -> Iterator[Connection]:
    """A SQLAlchemy connection in one transaction; connection failures made readable."""
    engine = sqlalchemy_engine(url)
    try:
        # A malformed URL is a ProgrammingError of the driver: an input error all the same.
        connection = engine.connect()
    except DBAPIError as exc:
        engine.dispose()
        raise DatabaseError(
            f"cannot use {redact_url(url)}: {error_text(exc.orig or exc, url)}"
        ) from None  # the driver's error quotes the URL's pieces: not chained
    try:
        with connection, connection.begin():
            yield connection
    except OperationalError as exc:
        raise DatabaseError(
            f"cannot use {redact_url(url)}: {error_text(exc.orig or exc, url)}"
        ) from None  # the driver's error quotes the URL's pieces: not chained
    finally:
        engine.dispose()
