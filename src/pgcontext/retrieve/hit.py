"""The row a search returns (pgcontext.search_hit): one chunk with its document and score."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, LiteralString

import psycopg
from psycopg.rows import class_row

Conn = psycopg.Connection[Any]


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk. `score` is higher-is-better (cosine similarity for dense search)."""

    chunk_id: int
    document_id: int
    source: str
    title: str | None
    score: float
    text: str
    position: int
    char_start: int
    char_end: int
    metadata: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The JSON shape of the CLI's `search --json` (a stable contract)."""
        return {
            "chunk_id": self.chunk_id,
            "document": self.source,
            "title": self.title,
            "score": round(self.score, 6),
            "text": self.text,
            "metadata": self.metadata,
            "position": self.position,
            "span": [self.char_start, self.char_end],
        }


def fetch_hits(conn: Conn, query: LiteralString, params: tuple[Any, ...]) -> list[Hit]:
    """The rows of `query`, a call of a search function (all return search_hit), as Hits."""
    with conn.cursor(row_factory=class_row(Hit)) as cur:
        return cur.execute(query, params).fetchall()
