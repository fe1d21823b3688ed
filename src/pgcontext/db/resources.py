"""Where the `sql/` and `migrations/` folders are: in the wheel, or at the top of a checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent


def resource_dir(name: str) -> Path:
    """`name` is "sql" or "migrations"; a wheel ships them as pgcontext/_sql and _migrations."""
    for candidate in (_PACKAGE / f"_{name}", _PACKAGE.parent.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"pgcontext is installed without its {name}/ folder")


def sql_files() -> list[Path]:
    """The CREATE OR REPLACE files, applied in name order on every upgrade."""
    return sorted(resource_dir("sql").glob("*.sql"))
