"""Errors as the command line shows them: one line, exit code 1, flags instead of the API's
parameter names, no secret in it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import click
import psycopg

from pgcontext import PgContextError, known_secrets, redact_secrets

# The API parameter an error names (`PgContextError.parameter`) -> the option a user types.
FLAGS = {
    "filter": "--filter",
    "k": "-k",
    "prune": "--prune",
    "enqueue_only": "--enqueue",
    "max_bytes": "--max-bytes",
    "job_documents": "--job-size",
    "db_wait_seconds": "--db-wait",
    "fields.id": "--id-field",
    "fields.title": "--title-field",
    "fields.text": "--text-field",
    "chunk_tokens": "--chunk-tokens",
    "chunk_overlap": "--overlap",
    "text_search_config": "--language",
    "vector_type": "--vector-type",
    "model": "--model",
    "budget_tokens": "--budget",
    "max_tokens": "--max-tokens",
    "tokenizer": "--tokenizer",
    "template": "--template",
    "order": "--order",
    "mode": "--mode",
    "mmr": "--mmr",
    "rerank": "--rerank",
    "ef_search": "--ef-search",
    "local": "--local",
    "batch_size": "--batch-size",
    "lease_seconds": "--lease",
    "backoff_seconds": "--backoff",
    "collection": "--collection",
}


def _named(name: str) -> re.Pattern[str]:
    """`name` as a word of its own: not inside another name, not already a flag, and not
    quoted (a collection name or a metadata key is the user's data, never rewritten)."""
    return re.compile(rf"(?<![\w'\"`\[-]){re.escape(name)}(?![\w'\"`\]-])")


def user_message(exc: PgContextError) -> str:
    """The error's message with the flags a user types for the API parameters it names."""
    return with_flags(str(exc), exc.parameter)


def with_flags(message: str, parameter: str | None) -> str:
    """`message` with flags for the API parameters it names, when it is about one.

    Only a message about a parameter (`parameter` set) is rewritten: the parameter at fault
    is named by its flag (at its first mention, or in front when the message does not
    mention it), and other API names with an underscore in it (`enqueue_only`) become their
    flags too. Quoted words are the user's data and stay as they are.
    """
    if parameter is None:
        return message
    for name, flag in FLAGS.items():
        if "_" in name and name != parameter:
            message = _named(name).sub(flag, message)
    if parameter not in FLAGS:
        return message
    flag = FLAGS[parameter]
    if flag in message:
        return message
    message, found = _named(parameter).subn(flag, message, count=1)
    return message if found else f"{flag}: {message}"


def fail(message: str) -> click.ClickException:
    """The one way out with an error: one line, exit code 1, no secret in it."""
    return click.ClickException(redact_secrets(message, known_secrets()))


def bad_parameter(exc: PgContextError) -> click.BadParameter:
    """A usage error (exit code 2) for an option's value the library refused: click names
    the option itself ("Invalid value for '--filter': ..."), so the message stays as is."""
    return click.BadParameter(str(exc))


@contextmanager
def reported() -> Iterator[None]:
    """Every pgcontext or database error in the block becomes a one-line message, exit 1."""
    try:
        yield
    except PgContextError as exc:
        raise fail(user_message(exc)) from exc
    except psycopg.Error as exc:
        raise fail(f"database error: {str(exc).strip()}") from exc
