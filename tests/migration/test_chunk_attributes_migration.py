"""Migration 0005 moves chunk headings out of the user's metadata into chunk.attributes."""

from __future__ import annotations

from typing import Any

import psycopg

from pgcontext import SourceDocument, Store
from pgcontext.db import migrate


def chunk_columns(db_url: str) -> dict[str, tuple[Any, Any]]:
    """Source -> (metadata, attributes) of each document's first chunk."""
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT d.source, c.metadata, c.attributes FROM pgcontext.chunk c"
            " JOIN pgcontext.document d ON d.id = c.document_id WHERE c.position = 0"
        ).fetchall()
    return {source: (metadata, attributes) for source, metadata, attributes in rows}


def chunk_metadata_before_0005(db_url: str) -> dict[str, Any]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT d.source, c.metadata FROM pgcontext.chunk c"
            " JOIN pgcontext.document d ON d.id = c.document_id WHERE c.position = 0"
        ).fetchall()
    return dict(rows)


def test_headings_move_out_of_metadata_and_back(store: Store, db_url: str) -> None:
    body = "\n\n" + " ".join(f"word{i}." for i in range(10))
    store.ingest(
        "c",
        [
            SourceDocument("overwritten", None, "# Intro" + body, {"heading": "mine", "k": 1}),
            SourceDocument("plain", None, "# Only" + body, {}),
            SourceDocument("same", None, "# Same" + body, {"heading": "Same"}),
            SourceDocument("user-only", None, "no heading" + body, {"heading": "mine"}),
        ],
    )
    store.close()  # no idle connection in the way of ALTER TABLE
    migrate.downgrade(db_url, "0004")
    # What versions before 0005 stored: the chunk's heading over the user's.
    assert chunk_metadata_before_0005(db_url) == {
        "overwritten": {"heading": "Intro", "k": 1},
        "plain": {"heading": "Only"},
        "same": {"heading": "Same"},
        "user-only": {"heading": "mine"},
    }
    migrate.upgrade(db_url)
    assert chunk_columns(db_url) == {
        "overwritten": ({"heading": "mine", "k": 1}, {"heading": "Intro"}),
        "plain": ({}, {"heading": "Only"}),
        "same": ({"heading": "Same"}, {}),  # ambiguous: left as the user's
        "user-only": ({"heading": "mine"}, {}),
    }
