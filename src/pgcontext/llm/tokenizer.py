"""A chat model's own tokenizer, loaded to count context budgets (see `pgcontext.tokens`).

A chat model reads the messages through its chat template, which adds role markers around
every message: with a template, the count is of exactly what the model will read.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pgcontext.errors import ModelLoadError
from pgcontext.tokens import (
    ChatTokenCounter,
    ContentCounter,
    Messages,
    TokenCounter,
    count_contents,
)

# Re-exported: callers import ContentCounter and TokenCounter from here too.
__all__ = [
    "ChatTokenizer",
    "ContentCounter",
    "TokenCounter",
    "default_tokenizer",
    "load_tokenizer",
    "special_tokens_of",
]

log = logging.getLogger(__name__)


class ChatTokenizer:
    """A transformers tokenizer as a `ChatTokenCounter`: messages are counted through its
    chat template if it has one."""

    def __init__(self, name: str, tokenizer: Any) -> None:
        self.name = name
        self._tokenizer = tokenizer
        self._templated = bool(getattr(tokenizer, "chat_template", None))
        self.special_tokens = special_tokens_of(tokenizer)

    def count(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False))

    def renamed(self, name: str) -> ChatTokenizer:
        return ChatTokenizer(name, self._tokenizer)

    def count_messages(self, messages: Messages) -> int:
        if not self._templated:
            return count_contents(self.count, messages)
        encoded = self._tokenizer.apply_chat_template(
            list(messages), tokenize=True, add_generation_prompt=True, return_dict=True
        )
        return len(encoded["input_ids"])


def special_tokens_of(tokenizer: Any) -> frozenset[str]:
    """A transformers tokenizer's special tokens and added tokens (such as `<|im_start|>`)."""
    special = set(getattr(tokenizer, "all_special_tokens", ()))
    added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    special.update(token.content for token in added.values())
    return frozenset(token for token in special if isinstance(token, str) and token)


def load_tokenizer(spec: str | Path, *, allow_hub: bool = False) -> ChatTokenizer:
    """A tokenizer from a local folder (tokenizer.json / tokenizer_config.json) or, with
    hub downloads allowed, a hub name such as "Qwen/Qwen2.5-7B-Instruct"."""
    try:
        from transformers import AutoTokenizer
    except ImportError as exc:  # pragma: no cover - transformers comes with the core
        raise ModelLoadError(str(exc)) from exc
    path = Path(spec).expanduser()
    local = path.is_dir()
    if not local and (path.exists() or str(spec).startswith((".", "/", "~"))):
        raise ModelLoadError(f"tokenizer {spec!r}: not a folder holding a tokenizer")
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            str(path) if local else str(spec), local_files_only=local or not allow_hub
        )
    except (OSError, ValueError) as exc:
        hint = "" if local or allow_hub else " (hub downloads are off: set PGCONTEXT_ALLOW_HUB=1)"
        raise ModelLoadError(f"cannot load tokenizer {spec!r}{hint}: {exc}") from exc
    return ChatTokenizer(str(spec), tokenizer)


def default_tokenizer(models_dir: Path, fallback: ChatTokenCounter) -> ChatTokenCounter:
    """The bundled chat model's tokenizer; `fallback` (with a warning) when it is missing."""
    from pgcontext.llm.local import MODEL_NAME, local_model_folder

    try:
        # Conversion and load failures arrive as ModelLoadError too.
        return load_tokenizer(local_model_folder(models_dir)).renamed(MODEL_NAME)
    except ModelLoadError as exc:
        log.warning("counting tokens with %s instead of %s: %s", fallback.name, MODEL_NAME, exc)
        return fallback
