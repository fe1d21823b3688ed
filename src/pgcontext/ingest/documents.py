"""What ingest reads and what it reports: documents, their ready chunks, and problems."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pgcontext.errors import ConfigError
from pgcontext.limits import text_problem


@dataclass(frozen=True)
class PrecomputedChunk:
    """A chunk that arrives with its embedding (an export, or vectors made elsewhere)."""

    position: int
    text: str
    start: int
    end: int
    embedding: list[float]
    heading: str | None = None
    token_count: int | None = None
    model: str | None = None  # the model name or "name@revision" the record says it used


@dataclass(frozen=True)
class SourceDocument:
    """One document to chunk and embed (or, with `chunks`, to store as it comes)."""

    source: str  # unique within a collection: absolute posix path, or the JSONL record id
    title: str | None
    text: str  # plain text to be chunked, never empty or whitespace only
    metadata: dict[str, Any]  # JSON-serialisable
    chunks: tuple[PrecomputedChunk, ...] = ()
    version: int | None = None
    """Its version ticket (sql/035_document_versions.sql), taken just before it was read:
    content read later gets a newer one and wins. None: taken when handed to an ingest."""


@dataclass(frozen=True)
class SourceProblem:
    """An input that could not be read; `reason` says what to do about it."""

    source: str  # a path, or "path:LINE" for a JSONL line
    reason: str
    parameter: str | None = field(default=None, compare=False)
    """The ingest parameter the fix is about (`max_bytes`, `fields.text`...), if one is:
    the CLI names its flag."""


@dataclass(frozen=True)
class JsonlFields:
    """Which JSONL/JSON record fields hold the id, title and text; None means auto-detect."""

    id: str | None = None  # auto: "_id", then "id", else "path:LINE"
    title: str | None = None  # auto: "title"
    text: str | None = None  # auto: the first present of "text", "content", "body"

    def __post_init__(self) -> None:
        for name in ("id", "title", "text"):
            value = getattr(self, name)
            problem = None if value is None else text_problem(value)
            if problem is not None:
                raise ConfigError(f"fields.{name} {value!r} {problem}", parameter=f"fields.{name}")
