"""Filters and queries beyond the limits are usage errors (exit code 2) with one clear line."""

from __future__ import annotations

from typing import Any

import pytest

DEEP = '{"$not": ' * 10_000 + '{"a": 1}' + "}" * 10_000
HUGE_NUMBER = '{"a": ' + "9" * 5000 + "}"
MANY_VALUES = '{"a": {"$in": [' + ", ".join(str(i) for i in range(15_000)) + "]}}"
LONG_QUERY = " ".join(f"w{i}" for i in range(20_000))


@pytest.mark.parametrize("command", ["search", "context", "ask"])
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["cat", "--filter", DEEP], "nested deeper than 65 JSON levels"),
        (["cat", "--filter", HUGE_NUMBER], "an integer of 5,000 digits"),
        (["cat", "--filter", MANY_VALUES], r"key 'a': $in has 15,000 values"),
        ([LONG_QUERY], "the query has 128,889 characters"),
    ],
    ids=["deep", "digits", "in-values", "long-query"],
)
def test_limits_are_usage_errors(run: Any, command: str, args: list[str], message: str) -> None:
    result = run(command, *args, "-c", "kb")
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output) < 2000  # the offending value is not echoed in full
