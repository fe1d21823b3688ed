"""Connections: pgvector's types are registered here and nowhere else."""

from __future__ import annotations

import re

import psycopg
from pgvector.psycopg import register_vector
from psycopg_pool import ConnectionPool
from sqlalchemy import Engine, create_engine
from sqlalchemy.pool import NullPool

from pgcontext.errors import DatabaseError
from pgcontext.redact import MASK, redact_secrets, redact_url, split_url, url_secrets


def configure(conn: psycopg.Connection) -> None:
    """Pool callback: teach the connection pgvector's vector and halfvec types."""
    register_vector(conn)


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
        raise DatabaseError(
            f"cannot connect to {redact_url(url)}: {error_text(exc, url)}"
        ) from None
    return pool


def error_text(exc: BaseException, url: str) -> str:
    """A driver's message about `url`, without any piece of its password (libpq may quote
    one when it misreads a URL whose password has a raw '@' or '/')."""
    text = redact_secrets(str(exc).strip(), url_secrets(url))
    url_parts = split_url(url)
    credentials = url_parts[1].rpartition("@")[0] if url_parts else ""
    if any(c in credentials for c in "@/?#"):
        # Which separator ends the password is anyone's guess: the host or parameter libpq
        # quotes may be most of it.
        text = _QUOTED.sub(lambda quoted: f"{quoted[0][0]}{MASK}{quoted[0][0]}", text)
    return text


# A quoted host, port or parameter: one word (a one-character one is libpq's own, "=").
_QUOTED = re.compile(r"\"[^\"\s]{2,}\"|'[^'\s]{2,}'")


def sqlalchemy_engine(url: str) -> Engine:
    """A SQLAlchemy engine whose connections libpq opens from `url` itself.

    SQLAlchemy's own URL parser reads an unencoded '@' or ':' in a password otherwise than
    libpq (and quotes the pieces in its errors); libpq also takes key=value strings."""
    check_url(url)
    return create_engine(
        "postgresql+psycopg://", creator=lambda: psycopg.connect(url), poolclass=NullPool
    )


def check_url(url: str) -> None:
    """A postgresql:// URL or libpq's key=value string, else a clear error before libpq's."""
    parts = split_url(url)
    if (parts and parts[0] not in {"postgresql", "postgres"}) or (not parts and "=" not in url):
        raise DatabaseError(
            f"not a PostgreSQL URL: {redact_url(url)} (use postgresql://user:password@host"
            ":port/dbname, or libpq's key=value form: host=... dbname=...)"
        )
