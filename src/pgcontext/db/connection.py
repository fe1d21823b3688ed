"""Connections: pgvector's types are registered here and nowhere else."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import psycopg
from pgvector.psycopg import register_vector
from psycopg_pool import ConnectionPool

from pgcontext.config import redact_url
from pgcontext.errors import DatabaseError


def configure(conn: psycopg.Connection) -> None:
    """Pool callback: teach the connection pgvector's vector and halfvec types."""
    register_vector(conn)


def connect(url: str, *, autocommit: bool = True) -> psycopg.Connection:
    """One configured connection, with a clear error when the server is unreachable."""
    try:
        conn = psycopg.connect(url, autocommit=autocommit)
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"cannot connect to {redact_url(url)}: {exc}".strip()) from exc
    configure(conn)
    return conn


def open_pool(url: str, *, max_size: int = 4) -> ConnectionPool:
    """A small pool; every connection comes out configured and in autocommit mode."""
    pool: ConnectionPool = ConnectionPool(
        url,
        min_size=1,
        max_size=max_size,
        kwargs={"autocommit": True},
        configure=configure,
        # A connection broken by a server restart is replaced, not handed out.
        check=ConnectionPool.check_connection,
        open=False,
    )
    try:
        pool.open(wait=True, timeout=15)
    except Exception as exc:
        pool.close()
        raise DatabaseError(f"cannot connect to {redact_url(url)}: {exc}") from exc
    return pool


def sqlalchemy_url(url: str) -> str:
    """The same database as a SQLAlchemy URL that uses psycopg 3."""
    parts = urlsplit(url)
    if parts.scheme not in {"postgresql", "postgres", "postgresql+psycopg"}:
        raise DatabaseError(f"not a PostgreSQL URL: {redact_url(url)}")
    return urlunsplit(parts._replace(scheme="postgresql+psycopg"))
