"""Checks of the text arguments every face passes in (queries, prompts, collection names).

A command-line argument that is not valid UTF-8 reaches Python with each bad byte as a
lone surrogate (PEP 383); neither a tokenizer nor PostgreSQL can take one, so it is refused
here, naming the argument, before it reaches either. The rule is pgcontext.limits.text_problem.
"""

from __future__ import annotations

from pgcontext.errors import ConfigError
from pgcontext.limits import text_problem

__all__ = ["check_text"]


def check_text(value: str, argument: str) -> str:
    """`value` unchanged if it is text PostgreSQL can store; else a ConfigError naming it."""
    problem = text_problem(value)
    if problem is not None:
        raise ConfigError(f"{argument} {_shown(value)} {problem}")
    return value


def _shown(value: str, width: int = 60) -> str:
    return repr(value if len(value) <= width else value[: width - 3] + "...")
