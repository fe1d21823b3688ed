"""The `pgcontext` command group: logging set up once, secrets kept out of every line."""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

import click

from pgcontext import RedactingFilter, known_secrets, redact_secrets
from pgcontext.cli import progress


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(package_name="pgcontext")
def main(verbose: int) -> None:
    """pgcontext: your documents in PostgreSQL + pgvector, retrieved into LLM prompts.

    The database is PGCONTEXT_DATABASE_URL, or else an embedded PostgreSQL kept under
    PGCONTEXT_HOME (started on first use, reused afterwards). Models load offline; set
    PGCONTEXT_MODEL to embed new collections with another sentence-transformers model.
    """
    # Process-wide by nature, so the program sets it, never the library: the tokenizers'
    # thread pool would be re-created after every fork, with a warning per worker process.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    secrets = known_secrets()
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter(secrets))
    sys.excepthook = _redacting_excepthook(secrets)
    if verbose == 0:
        # Progress lines on non-terminals are INFO of our own progress module.
        logging.getLogger(progress.__name__).setLevel(logging.INFO)
        # The worker logs a database outage once; the pool would log every reconnection.
        logging.getLogger("psycopg.pool").setLevel(logging.ERROR)


def _redacting_excepthook(secrets: list[str]) -> Callable[..., None]:
    """A traceback (a bug of ours) is still printed, but never with a secret in it."""

    def hook(kind: type[BaseException], value: BaseException, tb: Any) -> None:
        text = "".join(traceback.format_exception(kind, value, tb))
        sys.stderr.write(redact_secrets(text, secrets))

    return hook
