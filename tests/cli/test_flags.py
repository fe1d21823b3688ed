"""Library errors name API parameters (`exc.parameter`); the CLI shows the flag instead."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import pytest

from pgcontext import (
    BudgetError,
    CollectionNotFoundError,
    ConfigError,
    FilterError,
    PgContextError,
    QueryError,
)
from pgcontext.cli import main
from pgcontext.cli.errors import FLAGS, user_message, with_flags


def every_option(command: click.Command) -> set[str]:
    names = {o for p in command.params if isinstance(p, click.Option) for o in p.opts}
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            names |= every_option(sub)
    return names


def test_every_flag_of_the_mapping_is_an_option_of_the_command() -> None:
    assert set(FLAGS.values()) <= every_option(main)


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        # The parameter at fault, at its first mention; other API names with an underscore.
        (
            ConfigError(
                "prune needs the run to finish: it cannot go with enqueue_only",
                parameter="prune",
            ),
            "--prune needs the run to finish: it cannot go with --enqueue",
        ),
        (
            FilterError("filter is not valid JSON: Expecting value", parameter="filter"),
            "--filter is not valid JSON: Expecting value",
        ),
        (
            ConfigError("k must be between 1 and 1000, not 0", parameter="k"),
            "-k must be between 1 and 1000, not 0",
        ),
        (
            BudgetError("budget_tokens=20 leaves no room", parameter="budget_tokens"),
            "--budget=20 leaves no room",
        ),
        # Not mentioned: the flag goes in front.
        (
            ConfigError("must be a positive number of seconds", parameter="db_wait_seconds"),
            "--db-wait: must be a positive number of seconds",
        ),
        # Already a flag (today's messages): left as it is.
        (
            FilterError("--filter has the key 'a' twice; merge its conditions", parameter="filter"),
            "--filter has the key 'a' twice; merge its conditions",
        ),
        # No parameter, or one the CLI has no flag for: the message as the library says it.
        (QueryError("the query has 10,001 characters"), "the query has 10,001 characters"),
        (PgContextError("rerank_depth must be at least 1", parameter="rerank_depth"), None),
    ],
)
def test_the_message_names_the_flag(error: PgContextError, shown: str | None) -> None:
    assert user_message(error) == (str(error) if shown is None else shown)


def test_a_name_inside_another_word_is_left_alone() -> None:
    error = ConfigError("the k-means filter_x is not k", parameter="k")
    assert user_message(error) == "the k-means filter_x is not -k"


@pytest.mark.model
def test_prune_with_enqueue_names_both_flags(run: Any, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("some text", encoding="utf-8")
    result = run("ingest", str(tmp_path / "a.txt"), "-c", "kb", "--prune", "--enqueue")
    assert result.exit_code == 1
    assert "--prune" in result.output and "--enqueue" in result.output


@pytest.mark.parametrize(
    "error",
    [
        # No parameter at fault: a collection named like a parameter is the user's data.
        CollectionNotFoundError("no collection named 'batch_size'; create it with "),
        # A quoted metadata key named like a parameter, in a message about a parameter.
        ConfigError("metadata['max_bytes'] is too large for max_bytes", parameter="max_bytes"),
    ],
)
def test_the_users_own_names_are_never_rewritten(error: PgContextError) -> None:
    shown = user_message(error)
    assert "'batch_size'" in shown or "['max_bytes']" in shown
    assert "--batch-size'" not in shown and "['--max-bytes']" not in shown


def test_a_problem_reason_names_the_flag_only_when_it_is_about_a_parameter() -> None:
    assert with_flags("split it or raise max_bytes", "max_bytes") == "split it or raise --max-bytes"
    reason = "metadata['max_bytes'] contains a NUL character"
    assert with_flags(reason, None) == reason
