"""Alembic environment: runs on the connection pgcontext hands it (see pgcontext.db.migrate)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from pgcontext.db.models import Base

config = context.config
target_metadata = Base.metadata


def _include_name(name: str | None, type_: str, parent_names: object) -> bool:
    # Only our schema: user tables in other schemas are none of our business.
    if type_ == "schema":
        return name == "pgcontext"
    return True


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:  # plain `alembic upgrade` from a shell: a URL in alembic's config
        engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
        with engine.begin() as conn:
            _run(conn)
    else:
        _run(connection)


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        version_table="alembic_version",
        version_table_schema="pgcontext",
        include_schemas=True,
        include_name=_include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("pgcontext migrations run online only: use `pgcontext db upgrade`")
run_migrations_online()
