"""Settings from PGCONTEXT_* environment variables: the only module that reads the environment."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import platformdirs

from pgcontext.errors import ConfigError

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


@dataclass(frozen=True)
class Settings:
    """Everything pgcontext takes from the environment, resolved once."""

    database_url: str | None
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
        )


def default_models_dir() -> Path:
    return Path(platformdirs.user_cache_dir("pgcontext")) / "models"


@dataclass(frozen=True)
class LlmSettings:
    """An OpenAI-compatible chat endpoint: PGCONTEXT_LLM_URL, _MODEL, _API_KEY(_FILE)."""

    url: str
    model: str
    api_key: str | None = field(default=None, repr=False)  # never printed

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> LlmSettings | None:
        url = env.get("PGCONTEXT_LLM_URL") or None
        if url is None:
            return None
        if not url.startswith(("http://", "https://")):
            raise ConfigError(
                f"PGCONTEXT_LLM_URL={redact_url(url)!r} is not an http:// or https:// URL"
            )
        key = env.get("PGCONTEXT_LLM_API_KEY") or None
        key_file = env.get("PGCONTEXT_LLM_API_KEY_FILE") or None
        if key is None and key_file is not None:
            try:
                key = Path(key_file).expanduser().read_text(encoding="utf-8").strip() or None
            except OSError as exc:
                raise ConfigError(
                    f"PGCONTEXT_LLM_API_KEY_FILE={key_file!r} cannot be read: {exc.strerror}"
                ) from None
        return cls(url=url, model=env.get("PGCONTEXT_LLM_MODEL") or "default", api_key=key)


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if value < 1:
        raise ConfigError(f"{name}={raw!r} must be at least 1")
    return value


def apply_offline_mode(settings: Settings) -> None:
    """Forbid hub downloads unless the user allowed them: no model may be fetched silently."""
    if not settings.allow_hub:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    # The tokenizers' thread pool is re-created after fork otherwise, with a warning per process.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def redact_url(url: str) -> str:
    """The URL without its password, for logs and error messages."""
    if "://" not in url:  # a key=value DSN: hide every password=... value
        return re.sub(r"(password\s*=\s*)('[^']*'|\S+)", r"\1***", url, flags=re.I)
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password:
        netloc = netloc.replace(f":{parts.password}@", ":***@", 1)
    query = re.sub(
        r"(^|&)((?:password|api[_-]?key|key|token|access_token)=)[^&]*",
        r"\1\2***",
        parts.query,
        flags=re.I,
    )
    return urlunsplit(parts._replace(netloc=netloc, query=query))
