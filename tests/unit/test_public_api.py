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


def test_what_faces_need_is_exported_and_documented() -> None:
    """The CLI imports only the package (tests/cli/test_imports.py): what it needs is here,
    and each name is explained in the package's docstring or its own."""
    needed = {
        "Settings", "known_secrets", "redact_url", "redact_secrets", "RedactingFilter",
        "MAX_K", "MAX_EF_SEARCH", "BUDGET_RANGE", "MAX_ANSWER_TOKENS", "DEFAULT_MODE",
        "DEFAULT_EF_SEARCH", "check_query", "check_paths", "parse_filter_json", "Progress",
        "Worker", "WorkerOptions", "fan_out", "run_eval", "EVAL_CONFIGURATIONS",
        "score_answers", "read_answer_records", "pydoc_topics", "stop_embedded",
    }  # fmt: skip
    assert needed <= set(pgcontext.__all__)
    package_doc = pgcontext.__doc__ or ""
    for name in pgcontext.__all__:
        value = getattr(pgcontext, name)
        own = inspect.getdoc(value) if callable(value) else None
        generated = own is None or own.startswith(f"{name}(")  # a dataclass's signature
        if generated and not name.isupper() and name != "__version__":
            assert f"`{name}`" in package_doc, f"{name} is explained nowhere"
