"""pgcontext's own per-chunk data (the heading) lives in chunk.attributes, never in the
user's metadata: a user's "heading" key survives and filters on it match."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import psycopg

from pgcontext import SearchOptions, SourceDocument, Store

TEXT = "# Intro\n\n" + " ".join(f"word{i}." for i in range(200))


def chunk_columns(db_url: str, collection: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(
            "SELECT d.source, c.position, c.metadata, c.attributes FROM pgcontext.chunk c"
            " JOIN pgcontext.document d ON d.id = c.document_id"
            " JOIN pgcontext.collection k ON k.id = c.collection_id WHERE k.name = %s"
            " ORDER BY d.source, c.position",
            (collection,),
        ).fetchall()


def test_a_users_heading_is_kept_and_filterable(store: Store, db_url: str) -> None:
    store.ingest("c", [SourceDocument("a", "A", TEXT, {"heading": "mine", "k": 1})])
    keyword_only = SearchOptions(mode="keyword")
    hits = store.search("word1", collection="c", filter={"heading": "mine"}, options=keyword_only)
    assert hits and all(hit.metadata == {"heading": "mine", "k": 1} for hit in hits)
    intro = {"heading": "Intro"}
    assert store.search("word1", collection="c", filter=intro, options=keyword_only) == []

    rows = chunk_columns(db_url, "c")
    assert len(rows) > 1
    assert all(metadata == {"heading": "mine", "k": 1} for _, _, metadata, _ in rows)
    assert rows[0][3] == {"heading": "Intro"}


def test_export_and_import_carry_the_chunk_heading_apart_from_metadata(
    store: Store, db_url: str, tmp_path: Path
) -> None:
    store.ingest(
        "src",
        [
            SourceDocument("a", "A", TEXT, {"heading": "mine"}),
            SourceDocument("b", None, "no heading here", {}),
        ],
    )
    buffer = io.BytesIO()
    store.export("src", buffer)
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert (lines[0]["heading"], lines[0]["metadata"]) == ("Intro", {"heading": "mine"})
    assert (lines[-1]["heading"], lines[-1]["metadata"]) == (None, {})

    dump = tmp_path / "dump.jsonl"
    dump.write_bytes(buffer.getvalue())
    store.ingest("copy", [dump])
    assert chunk_columns(db_url, "copy") == chunk_columns(db_url, "src")
