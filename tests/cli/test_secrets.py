"""No password or key ever reaches the terminal, whatever the URL looks like; settings that
cannot work are one clear line; `db stop` leaves a server it does not run alone."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from pgcontext.cli import main

NASTY = ["Pa/ssQ", "Pa@ss:w0rdZ", "Pa#ssQ", "Pa?ssQ", "Pa/ss@w0rd#Z?q"]


def invoke(tmp_path: Path, *args: str, **env: str) -> Result:
    env = {"PGCONTEXT_HOME": str(tmp_path / "home"), "PGCONTEXT_LLM_URL": "", **env}
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def secret_pieces(password: str) -> list[str]:
    """The password and the pieces a parser that misreads the URL could quote."""
    parts = password
    for separator in "@:/?#":
        parts = parts.replace(separator, " ")
    return [password, *(p for p in parts.split() if len(p) >= 2)]


def leaks(piece: str, output: str) -> bool:
    """Whether `output` shows `piece` of a password: anywhere once it is 6 characters long,
    else standing alone (a short piece such as "ss" is also part of words like "missing")."""
    if len(piece) >= 6:
        return piece in output
    return re.search(rf"(?<![A-Za-z0-9]){re.escape(piece)}(?![A-Za-z0-9])", output) is not None


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("password", NASTY)
def test_an_unreachable_database_is_named_without_its_password(
    tmp_path: Path, password: str
) -> None:
    url = f"postgresql://alice:{password}@127.0.0.1:{closed_port()}/db"
    result = invoke(tmp_path, "status", PGCONTEXT_DATABASE_URL=url)
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: cannot ")
    assert "Traceback" not in result.output
    for piece in secret_pieces(password):
        assert not leaks(piece, result.output)


def with_password(db_url: str, password: str) -> str:
    # db_url is postgresql://postgres@/db?host=...: the test server trusts local users,
    # so the password is sent and ignored, and the command succeeds.
    return db_url.replace("postgres@", f"postgres:{password}@", 1)


@pytest.mark.parametrize("password", ["Pa?ssQ", "Pa#ssQ"])
def test_status_shows_the_database_without_its_password(
    db_url: str, tmp_path: Path, password: str
) -> None:
    result = invoke(tmp_path, "status", PGCONTEXT_DATABASE_URL=with_password(db_url, password))
    assert result.exit_code == 0, result.output
    assert "database: postgresql://postgres:***@/" in result.output
    for piece in secret_pieces(password):
        assert not leaks(piece, result.output)


def test_a_key_value_connection_string_works_and_hides_its_password(
    postgresql: Any, tmp_path: Path
) -> None:
    info = postgresql.info
    conninfo = (
        f"host={info.host} port={info.port} dbname={info.dbname} user=postgres "
        "password='s3cr3t pa55'"
    )
    result = invoke(tmp_path, "status", PGCONTEXT_DATABASE_URL=conninfo)
    assert result.exit_code == 0, result.output
    assert "password=***" in result.output and "s3cr3t" not in result.output


def test_a_malformed_llm_url_is_one_line_naming_the_setting(tmp_path: Path) -> None:
    result = invoke(tmp_path, "status", PGCONTEXT_LLM_URL="http://[::1")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: PGCONTEXT_LLM_URL='http://[::1' is not a valid URL: check the host "
        "(an IPv6 address goes in [ ]) and port"
    ]


def test_llm_url_credentials_are_refused_unprinted(tmp_path: Path) -> None:
    url = "http://bob:Pa@ss:w0rdZ@127.0.0.1:9/v1"
    result = invoke(tmp_path, "status", PGCONTEXT_LLM_URL=url)
    assert result.exit_code == 1
    assert "PGCONTEXT_LLM_URL" in result.output and "PGCONTEXT_LLM_API_KEY" in result.output
    for piece in secret_pieces("Pa@ss:w0rdZ"):
        assert not leaks(piece, result.output)


def test_db_stop_leaves_an_external_database_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pgcontext.cli import database

    stopped: list[Path] = []
    monkeypatch.setattr(database, "stop_embedded", lambda home: stopped.append(home) or True)
    url = "postgresql://alice:Pa@ss:w0rdZ@db.example:5432/app"
    result = invoke(tmp_path, "db", "stop", PGCONTEXT_DATABASE_URL=url)
    assert result.exit_code == 1
    assert stopped == []
    assert "PGCONTEXT_DATABASE_URL is set" in result.output
    assert "nothing was stopped" in result.output
    assert "w0rdZ" not in result.output and "Pa@ss" not in result.output
    # Without it, `db stop` is for the embedded server, as before.
    result = invoke(tmp_path, "db", "stop")
    assert (result.exit_code, stopped) == (0, [tmp_path / "home"])


def test_db_stop_stops_the_embedded_server_named_by_its_own_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pgcontext.cli import database

    stopped: list[Path] = []
    monkeypatch.setattr(database, "stop_embedded", lambda home: stopped.append(home) or True)
    sockets = tmp_path / "run"
    sockets.mkdir()
    data = tmp_path / "home" / "pgdata"
    data.mkdir(parents=True)
    # What PostgreSQL writes: pid, data folder, start, port, socket folder, listen address.
    lines = ["4242", str(data), "1700000000", "5433", str(sockets), "localhost", "1 2", "ready"]
    (data / "postmaster.pid").write_text("\n".join(lines) + "\n")
    other = [
        f"postgresql://postgres@/pgcontext?host={sockets}&port=5432",  # another port
        f"postgresql://postgres@/pgcontext?host={tmp_path}&port=5433",  # another socket
        "postgresql://postgres@db.example:5433/pgcontext",  # another machine
    ]
    for url in other:
        result = invoke(tmp_path, "db", "stop", PGCONTEXT_DATABASE_URL=url)
        assert result.exit_code == 1 and "nothing was stopped" in result.output, url
    assert stopped == []
    for url in (
        f"postgresql://postgres:@/pgcontext?host={sockets}&port=5433",  # `pgcontext db url`
        f"host={sockets}/ port=5433 dbname=pgcontext",
        "postgresql://postgres@localhost:5433/pgcontext",
    ):
        result = invoke(tmp_path, "db", "stop", PGCONTEXT_DATABASE_URL=url)
        assert (result.exit_code, result.output) == (0, "stopped\n"), url
    assert stopped == [tmp_path / "home"] * 3


@pytest.mark.parametrize("url", ["mysql://bob:Pa@ss:w0rdZ@h/db", "Pa@ss:w0rdZ"])
def test_a_database_setting_that_is_no_postgresql_url_says_so(tmp_path: Path, url: str) -> None:
    result = invoke(tmp_path, "status", PGCONTEXT_DATABASE_URL=url)
    assert result.exit_code == 1
    assert result.output.startswith("Error: not a PostgreSQL URL: ")
    assert "Pa@ss" not in result.output and "w0rdZ" not in result.output


def test_an_error_sharing_letters_with_the_password_is_printed_unchanged(tmp_path: Path) -> None:
    words = "Passage path: class password missing; Parse error in sslmode"
    result = invoke(
        tmp_path,
        "status",
        PGCONTEXT_DATABASE_URL="postgresql://alice:Pa@ss:w0rdZ@127.0.0.1:1/db",
        PGCONTEXT_DB_WAIT_SECONDS=words,
    )
    assert result.exit_code == 1
    assert (
        result.output == f"Error: PGCONTEXT_DB_WAIT_SECONDS='{words}' is not a number of seconds\n"
    )


def test_a_key_value_password_holding_a_url_is_neither_refused_nor_printed(
    tmp_path: Path,
) -> None:
    conninfo = f"host=127.0.0.1 port={closed_port()} user=alice password=ab://cd@efgh dbname=db"
    result = invoke(tmp_path, "status", PGCONTEXT_DATABASE_URL=conninfo)
    assert result.exit_code == 1
    assert result.output.startswith("Error: cannot ")
    assert "host=127.0.0.1 port=" in result.output
    assert "not a PostgreSQL URL" not in result.output
    for piece in ("ab://cd@efgh", "cd@efgh", "efgh"):
        assert piece not in result.output


@pytest.mark.parametrize("key", ["sk-line1secret\nline2secret", "sk-abc\r\nX: 1"])
def test_a_key_with_a_line_break_is_one_line_without_the_key(tmp_path: Path, key: str) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(f"{key}\n", "utf-8")
    result = invoke(
        tmp_path,
        "ask",
        "what?",
        "-c",
        "kb",
        PGCONTEXT_LLM_URL="http://127.0.0.1:9/v1",
        PGCONTEXT_LLM_API_KEY_FILE=str(key_file),
    )
    assert result.exit_code == 1
    assert result.output.startswith("Error: the LLM API key")
    assert "Traceback" not in result.output
    for line in key.splitlines():
        assert line not in result.output


def test_the_python_api_chains_no_driver_error_quoting_the_password() -> None:
    import traceback

    from pgcontext import Store
    from pgcontext.errors import DatabaseError

    url = f"postgresql://alice:Pa@Secret123@127.0.0.1:{closed_port()}/db"
    with pytest.raises(DatabaseError) as raised:
        Store.open(url, upgrade=False)
    assert raised.value.__cause__ is None
    logged = "".join(traceback.format_exception(raised.value))  # what logging.exception prints
    assert "Secret123" not in logged and "postgresql://alice:***@" in logged


def test_the_host_libpq_reads_out_of_an_ambiguous_password_is_hidden(tmp_path: Path) -> None:
    url = f"postgresql://alice:1@2@3@4@5@6@7@8@127.0.0.1:{closed_port()}/db"
    result = invoke(tmp_path, "status", PGCONTEXT_DATABASE_URL=url)
    assert result.exit_code == 1
    assert "2@3" not in result.output and "7@8" not in result.output
