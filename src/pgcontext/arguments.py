"""Checks of the text arguments every face passes in (queries, prompts, collection names).

A command-line argument that is not valid UTF-8 reaches Python with each bad byte as a
lone surrogate (PEP 383); neither a tokenizer nor PostgreSQL can take one, so it is refused
here, naming the argument, before it reaches either.
"""

from __future__ import annotations

from pgcontext.errors import ConfigError

__all__ = ["check_text"]


def check_text(value: str, argument: str) -> str:
    """`value` unchanged if it is text PostgreSQL can store; else a ConfigError naming it."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ConfigError(
            f"{argument} {_shown(value)} is not valid UTF-8 ({_bad_part(value[exc.start])} at "
            f"character {exc.start}); give it in UTF-8"
        ) from None
    if "\x00" in value:
        raise ConfigError(
            f"{argument} {_shown(value)} contains a NUL character, which PostgreSQL cannot store"
        )
    return value


def _shown(value: str, width: int = 60) -> str:
    return repr(value if len(value) <= width else value[: width - 3] + "...")


def _bad_part(char: str) -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: a byte that was not UTF-8
        return f"byte 0x{code - 0xDC00:02x}"
    return f"lone surrogate U+{code:04X}"
