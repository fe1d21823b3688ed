"""The store a command works on, opened from the environment's settings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from pgcontext import Settings, Store
from pgcontext.cli.errors import reported


@contextmanager
def open_store(
    upgrade: bool | None = None,
    *,
    batch_size: int | None = None,
    db_wait_seconds: float | None = None,
) -> Iterator[Store]:
    """Open the store; every pgcontext error becomes a one-line message and exit code 1."""
    with reported():
        settings = Settings.from_env()
        if batch_size is not None:
            settings = replace(settings, batch_size=batch_size)
        if db_wait_seconds is not None:
            settings = replace(settings, db_wait_seconds=db_wait_seconds)
        with Store.open(upgrade=upgrade, settings=settings) as store:
            yield store
