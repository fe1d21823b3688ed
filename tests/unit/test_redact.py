"""Secrets never printed: URLs with nasty passwords, libpq key=value strings, echoed keys."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from pgcontext.config import ConfigError, LlmSettings, Settings, known_secrets
from pgcontext.redact import RedactingFilter, redact_secrets, redact_url, url_secrets

# Passwords with the characters that make a URL ambiguous, written raw (not percent-encoded).
NASTY = ["Pa/ssQ", "Pa@ss:w0rdZ", "Pa#ssQ", "Pa?ssQ", "a@b/c?d#e:f", "Pa%2FssQ"]


def pieces(password: str) -> list[str]:
    """The password and every piece a misreading parser might quote (2 characters or more)."""
    for separator in "@:/?#":
        password = password.replace(separator, " ")
    return [p for p in password.split() if len(p) >= 2]


@pytest.mark.parametrize("password", NASTY)
def test_a_url_hides_its_password_in_every_reading(password: str) -> None:
    url = f"postgresql://alice:{password}@127.0.0.1:5432/db?sslmode=require"
    shown = redact_url(url)
    assert shown == "postgresql://alice:***@127.0.0.1:5432/db?sslmode=require"
    for piece in [password, *pieces(password)]:
        assert redact_secrets(f"host '{piece}' is bad", url_secrets(url)) == "host '***' is bad"


def test_query_and_key_value_passwords_are_hidden() -> None:
    assert redact_url("postgresql://h/db?user=u&password=s3cret&sslpassword=k3y") == (
        "postgresql://h/db?user=u&password=***&sslpassword=***"
    )
    assert redact_url("https://h/v1?api-version=1&api_key=sk-x") == (
        "https://h/v1?api-version=1&api_key=***"
    )
    conninfo = "host=/tmp port=5432 password = 's3 c\\'ret' dbname=db"
    assert redact_url(conninfo) == "host=/tmp port=5432 password = *** dbname=db"
    assert "s3 c'ret" in url_secrets(conninfo)
    # libpq refuses a malformed string, and its tail may be a password's: none of it shown.
    assert redact_url("host=h password=ab cd dbname=x") == "host=h password=*** ***"
    assert "cd" in url_secrets("host=h password=ab cd dbname=x")
    assert redact_url("host=h password='unterminated") == "host=h password=***"
    # Nothing secret: unchanged.
    for plain in (
        "postgresql://postgres:@/pgcontext?host=/tmp/x",
        "postgresql://u@h/db",
        "host=/tmp dbname=x",
    ):
        assert redact_url(plain) == plain


def test_a_user_name_can_be_hidden_too() -> None:
    assert redact_url("http://sk-token@h/v1", keep_user=False) == "http://***@h/v1"


def test_known_secrets_come_from_every_setting(tmp_path: object) -> None:
    env = {
        "PGCONTEXT_DATABASE_URL": "postgresql://alice:Pa@ss:w0rdZ@h/db",
        "PGCONTEXT_LLM_URL": "http://h/v1?api_key=sk-in-url",
        "PGCONTEXT_LLM_API_KEY": "sk-key",
    }
    secrets = known_secrets(env)
    assert {"Pa@ss:w0rdZ", "w0rdZ", "sk-in-url", "sk-key"} <= set(secrets)
    text = "failed: Pa@ss:w0rdZ, w0rdZ, Bearer sk-key, ?api_key=sk-in-url"
    assert redact_secrets(text, secrets) == "failed: ***, ***, Bearer ***, ?api_key=***"


def test_log_records_leave_redacted() -> None:
    record = logging.LogRecord(
        "x", logging.WARNING, __file__, 1, "down: %s", ("pw=hunter22",), None
    )
    RedactingFilter(["hunter22"]).filter(record)
    assert record.getMessage() == "down: pw=***"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://[::1", "is not a valid URL"),
        ("http://h:port/v1", "is not a valid URL"),
        ("http://:80/v1", "has no host name"),
        ("http://bob:Pa@ss:w0rdZ@127.0.0.1:9/v1", "has credentials in it"),
        ("http://bob:s3cr3tQ@127.0.0.1:9/v1", "has credentials in it"),
        ("localhost:8000", "is not an http"),
    ],
)
def test_a_bad_llm_url_is_a_clear_error_without_its_secrets(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        Settings.from_env({"PGCONTEXT_LLM_URL": url})
    assert "PGCONTEXT_LLM_URL" in str(raised.value)
    for piece in ("Pa@ss", "w0rdZ", "s3cr3tQ"):
        assert piece not in str(raised.value)
    with pytest.raises(ConfigError, match=message):
        LlmSettings(url=url, model="m")  # the Python API checks it the same way


ORDINARY = "Passage path: class password missing; Parse error in sslmode (is it up?)"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://alice:Pa@ss:w0rdZ@host/db",
        "postgresql://alice:Pa/ss#in?ss@host/db",
        "host=h password=s3cr3tQ is up",  # libpq refuses it: its tail is secret, not its words
    ],
)
def test_ordinary_text_sharing_letters_with_a_password_is_left_alone(url: str) -> None:
    env = {"PGCONTEXT_DATABASE_URL": url, "PGCONTEXT_LLM_API_KEY": "sk-key"}
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "%s", (ORDINARY,), None)
    RedactingFilter(known_secrets(env)).filter(record)
    assert record.getMessage() == ORDINARY
    assert redact_secrets(ORDINARY, known_secrets(env)) == ORDINARY


def test_connection_errors_lose_the_pieces_a_parser_quotes_and_nothing_else() -> None:
    from pgcontext.db.connection import error_text

    url = "postgresql://alice:Pa@ss:w0rdZ@host/db"
    quoted = "failed to resolve host 'ss': Passage path class sslmode; port 'w0rdZ@host'"
    assert error_text(Exception(quoted), url) == (
        # Two '@': every quoted host or port is hidden whole (item 7 of issue 9).
        "failed to resolve host '***': Passage path class sslmode; port '***'"
    )
    # A long piece is a secret wherever it stands; a short one only standing alone.
    url = "postgresql://alice:longpassword:Pa@host/db"
    assert error_text(Exception("xlongpasswordx Pa Pass"), url) == "x***x *** Pass"


# -- issue 9, second round: what a hostile tester still found ----------------------------


@pytest.mark.parametrize(
    "conninfo",
    [
        "host=127.0.0.1 port=55432 user=alice password=ab://cd@efgh dbname=db",
        "dbname='postgresql://alice:pw@h/db' password=ab://cd@efgh",
    ],
)
def test_a_key_value_string_holding_a_url_is_no_url(conninfo: str) -> None:
    from pgcontext.db.connection import check_url

    check_url(conninfo)  # libpq takes it: so do we
    assert "ab://cd@efgh" not in redact_url(conninfo)
    assert "password=***" in redact_url(conninfo)
    assert "ab://cd@efgh" in url_secrets(conninfo)


@pytest.mark.parametrize(
    "name", ["code", "sig", "api_token", "client_secret", "x-api-key", "auth", "passwd"]
)
def test_query_secrets_under_any_secret_looking_name_are_hidden(name: str) -> None:
    url = f"https://h/v1?api-version=2&{name}=s3cr3tvalue"
    assert redact_url(url) == f"https://h/v1?api-version=2&{name}=***"
    assert "s3cr3tvalue" in url_secrets(url)


def test_a_secret_is_hidden_in_any_case_and_when_cut() -> None:
    from pgcontext.redact import clip

    key = "sk-proj-AbCdEf123456"
    assert redact_secrets(f"bad {key.lower()}", [key]) == "bad ***"
    text = "x" * 290 + f"Bearer {key}"
    assert clip(text, 300, [key]) == "x" * 290 + "Bearer ***"
    # The sender cut it already: its start (6 characters or more) is hidden too.
    assert clip(f"Bearer {key[:9]}", 300, [key]) == "Bearer ***"
    assert clip("Bearer sk-pr", 300, [key]) == "Bearer sk-pr"  # too short to tell


def test_a_host_of_an_ambiguous_password_is_hidden_whole() -> None:
    from pgcontext.db.connection import error_text

    url = "postgresql://alice:1@2@3@4@5@6@7@8@127.0.0.1:5432/db"
    message = 'failed to resolve host "2@3@4@5@6@7@8@127.0.0.1": Name or service not known'
    assert error_text(Exception(message), url) == (
        'failed to resolve host "***": Name or service not known'
    )


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("sk-line1secret\nline2secret", "line break"),
        ("sk-abc\r\nX: 1", "line break"),
        ("sk-abc\x00def", "control character"),
        ("sk-ключ", "outside Latin-1"),
    ],
)
def test_a_key_no_header_can_carry_is_refused_unprinted(key: str, problem: str) -> None:
    env = {"PGCONTEXT_LLM_URL": "http://127.0.0.1:9/v1", "PGCONTEXT_LLM_API_KEY": key}
    with pytest.raises(ConfigError, match=problem) as raised:
        Settings.from_env(env)
    assert "PGCONTEXT_LLM_API_KEY" in str(raised.value)
    for line in key.splitlines():
        assert line not in str(raised.value)


def test_a_key_file_is_read_once_without_its_newline(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("sk-from-file\n", "utf-8")
    env = {
        "PGCONTEXT_LLM_URL": "http://127.0.0.1:9/v1",
        "PGCONTEXT_LLM_API_KEY_FILE": str(key_file),
    }
    llm = Settings.from_env(env).llm
    assert llm is not None and llm.api_key == "sk-from-file"
    key_file.write_text("sk-line1secret\nline2secret\n", "utf-8")
    with pytest.raises(ConfigError, match="line break") as raised:
        Settings.from_env(env)
    assert "line2secret" not in str(raised.value)
    key_file.write_bytes(b"sk-\xff\xfe")
    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        Settings.from_env(env)


def test_a_key_given_through_a_pipe_is_read_once(tmp_path: Path) -> None:
    read, write = os.pipe()
    os.write(write, b"sk-through-a-pipe\n")
    os.close(write)
    env = {
        "PGCONTEXT_LLM_URL": "http://127.0.0.1:9/v1",
        "PGCONTEXT_LLM_API_KEY_FILE": f"/dev/fd/{read}",
    }
    try:
        assert "sk-through-a-pipe" in known_secrets(env)  # the CLI's first reading
        llm = Settings.from_env(env).llm
    finally:
        os.close(read)
    assert llm is not None and llm.api_key == "sk-through-a-pipe"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://a b/", "space or control character"),
        ("http://127.0.0.1:18777/v 1", "space or control character"),
        ("http://127.0.0.1:18777/vé1", "non-ASCII"),
        ("http://127.0.0.1:18777/v1?q=é", "non-ASCII"),
        ("http://a..b/v1", "invalid host name"),
        (f"http://{'a' * 70}.example/v1", "invalid host name"),
    ],
)
def test_an_llm_url_http_cannot_send_to_is_refused_early(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        LlmSettings(url=url, model="m")
    assert "PGCONTEXT_LLM_URL" in str(raised.value)
