"""Secrets out of what we print and log: URLs, libpq key=value strings, known secret values.

A raw '@', '/', '?' or '#' in a password makes a URL ambiguous: libpq, urllib and SQLAlchemy
each split it somewhere else, and an error message may quote any piece. So a URL's
credentials are everything between '://' and its last '@' (they cover every reading), and
`url_secrets` lists those pieces, for `redact_secrets` to remove from error text.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from urllib.parse import unquote, unquote_plus

MASK = "***"
# Query or key=value parameters whose value is a secret (compared in lower case).
SECRET_KEYS = frozenset(
    {"password", "sslpassword", "api_key", "api-key", "apikey", "key", "token", "access_token"}
)
_AMBIGUOUS = "@:/?#"
# Shorter values are left alone in free text: removing every "a" would garble messages
# for no secrecy. (URLs themselves hide their passwords whatever the length.)
_MIN_SECRET = 2


def redact_url(text: str, *, keep_user: bool = True) -> str:
    """`text` (a URL, or libpq's key=value form) with its passwords and keys hidden.

    `keep_user=False` hides the user name too (some services take a token as user name)."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        return _redact_conninfo(text)
    credentials, at, location = rest.rpartition("@")
    if at:
        user, _, password = credentials.partition(":")
        if not keep_user:
            credentials = f"{MASK}@"
        else:
            credentials = f"{user}:{MASK}@" if password else f"{credentials}@"
    return f"{scheme}://{credentials}{_redact_query(location)}"


def url_secrets(text: str | None) -> list[str]:
    """The secret values in a URL or key=value string, in every reading of an ambiguous one."""
    if not text:
        return []
    _, sep, rest = text.partition("://")
    if not sep:
        return _conninfo_secrets(text)
    secrets: list[str] = []
    credentials, at, location = rest.rpartition("@")
    _, colon, password = credentials.partition(":")
    if at and colon and password:
        secrets += [password, unquote(password)]
        secrets += [p for p in _split_any(password, _AMBIGUOUS) if len(p) >= _MIN_SECRET]
    _, question, query = location.partition("?")
    for key, value in _query_fields(query) if question else []:
        if key in SECRET_KEYS and value:
            secrets += [value, unquote_plus(value)]
    return secrets


def redact_secrets(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every occurrence of each secret value (2 characters or more) as ***."""
    for secret in sorted({s for s in secrets if s and len(s) >= _MIN_SECRET}, key=len)[::-1]:
        text = text.replace(secret, MASK)
    return text


class RedactingFilter(logging.Filter):
    """A handler filter: each record's message leaves with the secrets (and URLs) hidden."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_secrets(message, self.secrets)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


# -- the pieces ------------------------------------------------------------------------------


def _redact_query(location: str) -> str:
    base, question, query = location.partition("?")
    if not question:
        return location
    fields = []
    for raw in query.split("&"):
        key, equals, _ = raw.partition("=")
        secret = equals and unquote_plus(key).lower() in SECRET_KEYS
        fields.append(f"{key}={MASK}" if secret else raw)
    return f"{base}?{'&'.join(fields)}"


def _query_fields(query: str) -> list[tuple[str, str]]:
    fields = []
    for raw in query.split("&"):
        key, _, value = raw.partition("=")
        fields.append((unquote_plus(key).lower(), value))
    return fields


def _split_any(text: str, separators: str) -> list[str]:
    for separator in separators[1:]:
        text = text.replace(separator, separators[0])
    return text.split(separators[0])


def _redact_conninfo(text: str) -> str:
    fields, failed_at = _conninfo_fields(text)
    out, done = [], 0
    for key, start, end in fields:
        if key.lower() in SECRET_KEYS:
            out += [text[done:start], MASK]
            done = end
    out.append(text[done:failed_at])
    if failed_at is not None:
        # libpq refuses the rest, and it may hold a password's tail: show none of it.
        out.append(MASK)
    return "".join(out)


def _conninfo_secrets(text: str) -> list[str]:
    fields, failed_at = _conninfo_fields(text)
    secrets: list[str] = []
    for key, start, end in fields:
        if key.lower() in SECRET_KEYS:
            raw = text[start:end]
            secrets += [raw, _unescape(raw)]
    if failed_at is not None:
        rest = text[failed_at:]
        secrets += [rest.strip(), *(p for p in rest.split() if len(p) >= _MIN_SECRET)]
    return secrets


def _conninfo_fields(text: str) -> tuple[list[tuple[str, int, int]], int | None]:
    """libpq's key = value pairs: (key, value start, value end), and where parsing failed."""
    fields: list[tuple[str, int, int]] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i == n:
            return fields, None
        key_start = i
        while i < n and text[i] != "=" and not text[i].isspace():
            i += 1
        key = text[key_start:i]
        while i < n and text[i].isspace():
            i += 1
        if i == n or text[i] != "=" or not key:
            return fields, key_start
        i += 1
        while i < n and text[i].isspace():
            i += 1
        start = i
        if i < n and text[i] == "'":
            i += 1
            while i < n and text[i] != "'":
                i += 2 if text[i] == "\\" else 1
            if i >= n:  # unterminated quote
                return fields, start
            i += 1
        else:
            while i < n and not text[i].isspace():
                i += 2 if text[i] == "\\" else 1
            i = min(i, n)
        fields.append((key, start, i))


def _unescape(value: str) -> str:
    if value.startswith("'") and value.endswith("'") and len(value) >= 2:
        value = value[1:-1]
    out, i = [], 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value):
            i += 1
        out.append(value[i])
        i += 1
    return "".join(out)
