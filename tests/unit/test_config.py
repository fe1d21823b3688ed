"""Settings from the environment: the database wait bound."""

from __future__ import annotations

import pytest

from pgcontext.config import DEFAULT_DB_WAIT_SECONDS, ConfigError, Settings


def test_the_database_wait_is_a_positive_number_of_seconds() -> None:
    assert Settings.from_env({}).db_wait_seconds == DEFAULT_DB_WAIT_SECONDS == 60
    assert Settings.from_env({"PGCONTEXT_DB_WAIT_SECONDS": "2.5"}).db_wait_seconds == 2.5
    for bad in ("0", "-1", "soon", "inf", "nan"):
        with pytest.raises(ConfigError, match=f"PGCONTEXT_DB_WAIT_SECONDS='{bad}'"):
            Settings.from_env({"PGCONTEXT_DB_WAIT_SECONDS": bad})


def test_the_settings_never_show_the_database_password() -> None:
    settings = Settings.from_env({"PGCONTEXT_DATABASE_URL": "postgresql://u:Pa@ss:w0rdZ@h/db"})
    assert "w0rdZ" not in repr(settings) and "Pa@ss" not in repr(settings)
