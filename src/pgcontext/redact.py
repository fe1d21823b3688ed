"""Secrets out of what we print and log: URLs, libpq key=value strings, known secret values.

A raw '@', '/', '?' or '#' in a password makes a URL ambiguous: libpq, urllib and SQLAlchemy
each split it somewhere else, and an error message may quote any piece. So a URL's
credentials are everything between '://' and its last '@' (they cover every reading).
A secret value itself is hidden wherever it appears. The pieces of an ambiguous one (a
`Piece`) are hidden only where a parser would quote them: standing alone, not inside a
word, unless they are long enough to be no word at all. Every piece goes only into error
text about that URL (`url_secrets`); a password's tails (what follows each separator, which
libpq may quote as a host, a port or a query) go into every log line too.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import unquote, unquote_plus

MASK = "***"
# A query or key=value parameter whose name (in lower case) holds one of these is a secret:
# services name them freely (api_token, client_secret, x-api-key, sig, code, auth...).
SECRET_KEY_PARTS = (
    "key", "token", "secret", "password", "passwd", "pwd", "sig", "code", "auth", "credential"
)  # fmt: skip
# A URL starts with its scheme and '://' (libpq: postgresql:// or postgres://, at the very
# start); anything else is libpq's key=value form, whatever '://' a value may hold.
_URL_START = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_AMBIGUOUS = "@:/?#"
# Shorter values are left alone in free text: removing every "a" would garble messages
# for no secrecy. (URLs themselves hide their passwords whatever the length.)
_MIN_SECRET = 2
# A piece this long is hidden even inside a word; a shorter one only where it stands alone
# ("ss" in "host 'ss'", not in "class").
_MIN_PIECE_ANYWHERE = 6


def is_secret_key(name: str) -> bool:
    """Whether a query or key=value parameter of this name carries a secret value."""
    name = name.lower()
    return any(part in name for part in SECRET_KEY_PARTS)


def split_url(text: str) -> tuple[str, str] | None:
    """(scheme, the rest after '://') when `text` is a URL; None for a key=value string."""
    match = _URL_START.match(text)
    if match is None:
        return None
    return match.group()[:-3], text[match.end() :]


class Piece(str):
    """A part of an ambiguous secret: hidden where it stands alone, or anywhere when long."""


def redact_url(text: str, *, keep_user: bool = True) -> str:
    """`text` (a URL, or libpq's key=value form) with its passwords and keys hidden.

    `keep_user=False` hides the user name too (some services take a token as user name)."""
    url = split_url(text)
    if url is None:
        return _redact_conninfo(text)
    scheme, rest = url
    credentials, at, location = rest.rpartition("@")
    if at:
        user, _, password = credentials.partition(":")
        if not keep_user:
            credentials = f"{MASK}@"
        else:
            credentials = f"{user}:{MASK}@" if password else f"{credentials}@"
    return f"{scheme}://{credentials}{_redact_query(location)}"


def url_secrets(text: str | None, *, every_piece: bool = True) -> list[str]:
    """The secret values in a URL or key=value string, with the pieces of an ambiguous one.

    `every_piece` (for error text about this URL) adds every piece between separators;
    without it only the tails, which any message may quote, come with the values."""
    if not text:
        return []
    url = split_url(text)
    if url is None:
        return _conninfo_secrets(text, every_piece)
    rest = url[1]
    secrets: list[str] = []
    credentials, at, location = rest.rpartition("@")
    _, colon, password = credentials.partition(":")
    if at and colon and password:
        secrets += [password, unquote(password)]
        secrets += [Piece(t) for t in _tails(password, _AMBIGUOUS) if len(t) >= _MIN_SECRET]
        if every_piece:
            parts = _split_any(password, _AMBIGUOUS)
            secrets += [Piece(p) for p in parts if len(p) >= _MIN_SECRET]
    _, question, query = location.partition("?")
    for key, value in _query_fields(query) if question else []:
        if is_secret_key(key) and value:
            secrets += [value, unquote_plus(value)]
    return secrets


def redact_secrets(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with each secret value (2 characters or more) as ***: a value everywhere, a
    `Piece` where it stands alone or, when long, everywhere."""
    kinds: dict[str, bool] = {}  # secret -> only where it stands alone
    for secret in secrets:
        if secret and len(secret) >= _MIN_SECRET:
            alone = isinstance(secret, Piece) and len(secret) < _MIN_PIECE_ANYWHERE
            kinds[str(secret)] = kinds.get(str(secret), True) and alone
    for secret in sorted(kinds, key=len, reverse=True):  # the longest first: no half-masks
        # In any case: a server may echo a key lower-cased.
        if kinds[secret]:
            text = _standing_alone(secret).sub(MASK, text)
        else:
            text = re.compile(re.escape(secret), re.IGNORECASE).sub(MASK, text)
    return text


def clip(text: str, limit: int, secrets: Iterable[str | None]) -> str:
    """`text` redacted, then cut to `limit` characters, and without a secret's start (6
    characters or more) at its end, where the cut (ours or the sender's) may have left it."""
    values = [str(s) for s in secrets if s]
    text = redact_secrets(text, values)[:limit]
    for secret in values:
        for size in range(min(len(secret), len(text)), _MIN_PIECE_ANYWHERE - 1, -1):
            if text[-size:].lower() == secret[:size].lower():
                return text[:-size] + MASK
    return text


def _standing_alone(piece: str) -> re.Pattern[str]:
    """`piece` not glued to a letter or digit on a side where it starts or ends with one."""
    before = r"(?<!\w)" if re.match(r"\w", piece[0]) else ""
    after = r"(?!\w)" if re.match(r"\w", piece[-1]) else ""
    return re.compile(before + re.escape(piece) + after, re.IGNORECASE)


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
        secret = equals and is_secret_key(unquote_plus(key))
        fields.append(f"{key}={MASK}" if secret else raw)
    return f"{base}?{'&'.join(fields)}"


def _query_fields(query: str) -> list[tuple[str, str]]:
    fields = []
    for raw in query.split("&"):
        key, _, value = raw.partition("=")
        fields.append((unquote_plus(key).lower(), value))
    return fields


def _tails(text: str, separators: str) -> list[str]:
    """What follows each separator in `text`, to its end."""
    return [text[i + 1 :] for i, char in enumerate(text) if char in separators]


def _split_any(text: str, separators: str) -> list[str]:
    for separator in separators[1:]:
        text = text.replace(separator, separators[0])
    return text.split(separators[0])


def _redact_conninfo(text: str) -> str:
    fields, failed_at = _conninfo_fields(text)
    out, done = [], 0
    for key, start, end in fields:
        if is_secret_key(key):
            out += [text[done:start], MASK]
            done = end
    out.append(text[done:failed_at])
    if failed_at is not None:
        # libpq refuses the rest, and it may hold a password's tail: show none of it.
        out.append(MASK)
    return "".join(out)


def _conninfo_secrets(text: str, every_piece: bool) -> list[str]:
    fields, failed_at = _conninfo_fields(text)
    secrets: list[str] = []
    for key, start, end in fields:
        if is_secret_key(key):
            raw = text[start:end]
            secrets += [raw, _unescape(raw)]
    if failed_at is not None:
        rest = text[failed_at:]
        secrets.append(Piece(rest.strip()))
        if every_piece:
            secrets += [Piece(p) for p in rest.split() if len(p) >= _MIN_SECRET]
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
