"""The package exports what a user needs to catch: every error of the one exception tree."""

from __future__ import annotations

import inspect

import pgcontext
from pgcontext import errors

# Raised and caught inside the worker (the job is retried): never reaches a user.
INTERNAL = {"ChangedWhilePreparedError"}


def test_every_error_is_exported() -> None:
    tree = {
        name
        for name, value in vars(errors).items()
        if inspect.isclass(value) and issubclass(value, errors.PgContextError)
    }
    assert "DatabaseUnavailableError" in tree
    tree -= INTERNAL
    assert tree <= set(pgcontext.__all__)
    for name in tree:
        assert getattr(pgcontext, name) is getattr(errors, name)
