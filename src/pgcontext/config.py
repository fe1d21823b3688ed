"""Settings from PGCONTEXT_* environment variables: the only module that reads the environment."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import platformdirs

from pgcontext.errors import ConfigError
from pgcontext.redact import redact_url, split_url, url_secrets

N = TypeVar("N", int, float)

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_DB_WAIT_SECONDS = 60.0


@dataclass(frozen=True)
class Settings:
    """Everything pgcontext takes from the environment, resolved once."""

    database_url: str | None = field(repr=False)  # may hold a password: never printed
    """PGCONTEXT_DATABASE_URL; None means the embedded server under `home`."""
    home: Path
    """PGCONTEXT_HOME: where the embedded server keeps its data."""
    model: str
    """PGCONTEXT_MODEL: embedding model for new collections (a local folder or a model name)."""
    batch_size: int
    """PGCONTEXT_BATCH_SIZE: passages per embedding batch."""
    allow_hub: bool
    """PGCONTEXT_ALLOW_HUB=1 lets sentence-transformers download models; off by default."""
    llm: LlmSettings | None = None
    """The chat endpoint `ask` sends to, when PGCONTEXT_LLM_URL is set."""
    models_dir: Path = field(default_factory=lambda: default_models_dir())
    """PGCONTEXT_MODELS_DIR: models converted once for reuse (the local chat model)."""
    db_wait_seconds: float = DEFAULT_DB_WAIT_SECONDS
    """PGCONTEXT_DB_WAIT_SECONDS: how long `ingest` retries an unreachable database."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        home = env.get("PGCONTEXT_HOME") or platformdirs.user_data_dir("pgcontext")
        return cls(
            database_url=env.get("PGCONTEXT_DATABASE_URL") or None,
            home=Path(home).expanduser(),
            model=env.get("PGCONTEXT_MODEL") or DEFAULT_MODEL,
            batch_size=_positive_int(env, "PGCONTEXT_BATCH_SIZE", 64),
            allow_hub=env.get("PGCONTEXT_ALLOW_HUB", "") in {"1", "true", "yes"},
            llm=LlmSettings.from_env(env),
            models_dir=Path(env.get("PGCONTEXT_MODELS_DIR") or default_models_dir()).expanduser(),
            db_wait_seconds=_positive_float(
                env, "PGCONTEXT_DB_WAIT_SECONDS", DEFAULT_DB_WAIT_SECONDS
            ),
        )


def default_models_dir() -> Path:
    return Path(platformdirs.user_cache_dir("pgcontext")) / "models"


@dataclass(frozen=True)
class LlmSettings:
    """An OpenAI-compatible chat endpoint: PGCONTEXT_LLM_URL, _MODEL, _API_KEY(_FILE)."""

    url: str
    model: str
    api_key: str | None = field(default=None, repr=False)  # never printed

    def __post_init__(self) -> None:
        _check_llm_url(self.url)
        if self.api_key is not None:
            _check_api_key(self.api_key)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> LlmSettings | None:
        url = env.get("PGCONTEXT_LLM_URL") or None
        if url is None:
            return None
        key = env.get("PGCONTEXT_LLM_API_KEY") or None
        key_file = env.get("PGCONTEXT_LLM_API_KEY_FILE") or None
        if key is None and key_file is not None:
            try:
                key = read_key_file(key_file) or None
            except OSError as exc:
                raise ConfigError(
                    f"PGCONTEXT_LLM_API_KEY_FILE={key_file!r} cannot be read: {exc.strerror}"
                ) from None
            except UnicodeDecodeError:
                raise ConfigError(
                    f"PGCONTEXT_LLM_API_KEY_FILE={key_file!r} is not UTF-8 text"
                ) from None
        return cls(url=url, model=env.get("PGCONTEXT_LLM_MODEL") or "default", api_key=key)


# A key file read once per process: a pipe (`<(pass show key)`) gives its text only once.
# Keyed by the file's identity and change time, so a rotated key file is read again.
_KEY_FILES: dict[tuple[str, int, int, int], str] = {}


def read_key_file(path: str) -> str:
    """The key in a PGCONTEXT_LLM_API_KEY_FILE, without surrounding whitespace (its newline)."""
    location = Path(path).expanduser()
    info = location.stat()
    identity = (str(location), info.st_dev, info.st_ino, info.st_mtime_ns)
    if identity not in _KEY_FILES:
        _KEY_FILES[identity] = location.read_bytes().decode("utf-8").strip()
    return _KEY_FILES[identity]


def _check_api_key(key: str) -> None:
    """A key goes into an HTTP header: a line break or control character would split it
    (or end in a traceback quoting it), and a header holds only Latin-1."""
    if any(ord(c) < 32 or ord(c) == 127 for c in key):
        problem = "a line break or another control character"
    elif not all(ord(c) < 256 for c in key):
        problem = "a character outside Latin-1"
    else:
        return
    raise ConfigError(
        f"the LLM API key (PGCONTEXT_LLM_API_KEY or PGCONTEXT_LLM_API_KEY_FILE) has {problem} "
        "in it, which an HTTP header cannot carry: set the key alone, on one line"
    )


def _check_llm_url(url: str) -> None:
    """An http(s) URL with a host, a valid port and no credentials (they would not be sent)."""
    # Read as a URL even without its scheme (a libpq key=value string it is not).
    schemed = url if split_url(url) else f"x://{url}"
    shown = redact_url(schemed, keep_user=False).removeprefix("x://")
    shown = f"PGCONTEXT_LLM_URL={shown!r}"
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"{shown} is not an http:// or https:// URL")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # raises ValueError on a port that is not a number
    except ValueError:
        # The parser's own message may quote a piece of a password: not shown.
        raise ConfigError(
            f"{shown} is not a valid URL: check the host (an IPv6 address goes in [ ]) and port"
        ) from None
    if "@" in parts.netloc:
        raise ConfigError(
            f"{shown} has credentials in it, which are never sent: put the key in "
            "PGCONTEXT_LLM_API_KEY or PGCONTEXT_LLM_API_KEY_FILE (sent as a Bearer token)"
        )
    if not parts.hostname:
        raise ConfigError(f"{shown} has no host name")
    # What http.client and the IDNA codec refuse later, with a traceback: refused here.
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise ConfigError(f"{shown} has a space or control character in it: percent-encode it")
    if not f"{parts.path}?{parts.query}#{parts.fragment}".isascii():
        raise ConfigError(
            f"{shown} has a non-ASCII character in its path or query: percent-encode it"
        )
    try:
        parts.hostname.encode("idna")
    except UnicodeError:
        raise ConfigError(
            f"{shown} has an invalid host name (an empty or over-long label?)"
        ) from None


def known_secrets(env: Mapping[str, str] | None = None) -> list[str]:
    """Every secret value the settings hold (database password, endpoint key), for redaction
    of every line printed or logged: the values, and of an ambiguous password only its tails
    (its other pieces are for connection errors alone, see `connection.error_text`).

    Never raises: it serves the error path, where the settings may be the error."""
    env = os.environ if env is None else env
    secrets = url_secrets(env.get("PGCONTEXT_DATABASE_URL"), every_piece=False)
    secrets += url_secrets(env.get("PGCONTEXT_LLM_URL"), every_piece=False)
    secrets.append(env.get("PGCONTEXT_LLM_API_KEY") or "")
    key_file = env.get("PGCONTEXT_LLM_API_KEY_FILE")
    if key_file:
        with contextlib.suppress(OSError, UnicodeDecodeError):
            secrets.append(read_key_file(key_file))
    return [s for s in secrets if s]


def _positive_float(env: Mapping[str, str], name: str, default: float) -> float:
    seconds = "a positive number of seconds"
    value = _positive(env, name, float, "a number of seconds", seconds)
    if value == float("inf"):
        raise ConfigError(f"{name}={env[name]!r} must be {seconds}")
    return default if value is None else value


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    value = _positive(env, name, int, "a whole number", "at least 1")
    return default if value is None else value


def _positive(
    env: Mapping[str, str], name: str, kind: Callable[[str], N], what: str, positive: str
) -> N | None:
    """The variable `name` read as `kind` (`what`), above 0 (`positive`); None if unset."""
    raw = env.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not {what}") from None
    if not value > 0:  # NaN too
        raise ConfigError(f"{name}={raw!r} must be {positive}")
    return value
