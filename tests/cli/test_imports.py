"""The CLI is a face over the public API: its modules import `pgcontext` (the names
`pgcontext/__init__.py` exports), `pgcontext.errors` and each other, nothing below."""

from __future__ import annotations

import ast
from pathlib import Path

import pgcontext
import pgcontext.cli

CLI = Path(pgcontext.cli.__file__).parent


def below_the_api(source: str) -> list[str]:
    """Every import in `source` that reaches below pgcontext's public API, as text."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if _below(alias.name)]
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            if node.level > 1 or (node.level == 0 and _below(module)):  # `.x` is a sibling
                found.append(module)
            elif module == "pgcontext":  # `from pgcontext import limits` is a module
                found += [f"pgcontext.{a.name}" for a in node.names if a.name not in _PUBLIC]
    return found


_PUBLIC = set(pgcontext.__all__)


def _below(module: str) -> bool:
    if module != "pgcontext" and not module.startswith("pgcontext."):
        return False  # click, psycopg, the standard library
    return module not in {"pgcontext", "pgcontext.errors", "pgcontext.cli"} and not (
        module.startswith("pgcontext.cli.")
    )


def test_every_cli_module_imports_only_the_public_api() -> None:
    modules = sorted(CLI.glob("*.py"))
    assert len(modules) > 5, "the CLI is a package of modules"
    offending = {
        path.name: below_the_api(path.read_text(encoding="utf-8"))
        for path in modules
        if below_the_api(path.read_text(encoding="utf-8"))
    }
    assert not offending, f"imports below the public API: {offending}"


def test_the_check_sees_each_way_below_the_api() -> None:
    """Guards the test above: it is not blind."""
    for source in [
        "from pgcontext.store import Store",
        "import pgcontext.limits",
        "from pgcontext.retrieve import options",
        "from pgcontext import limits",
        "from ..store import Store",
        "def f():\n    from pgcontext.config import Settings\n",
    ]:
        assert below_the_api(source), source
    for source in [
        "from pgcontext import Store, Settings, fan_out",
        "from pgcontext.errors import PgContextError",
        "from pgcontext.cli.render import print_json",
        "from .render import print_json",
        "import click\nimport psycopg",
    ]:
        assert not below_the_api(source), source
