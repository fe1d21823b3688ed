"""The CLI on a test's own database: `env` for subprocesses, `run` for click's runner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from pgcontext.cli import main


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> dict[str, str]:
    return {"PGCONTEXT_DATABASE_URL": db_url, "PGCONTEXT_HOME": str(tmp_path / "home")}


@pytest.fixture
def run(env: dict[str, str]) -> Any:
    def invoke(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(main, list(args), env=env, input=input, catch_exceptions=False)

    return invoke
