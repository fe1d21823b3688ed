"""Export a collection to JSONL and ingest it back: same chunks, same vectors, no model runs."""

from __future__ import annotations

import io
import json
from pathlib import Path

import psycopg

from pgcontext import SearchOptions, SourceDocument, Store
from tests.support.fake_embedder import FakeEmbedder


def rows(db_url: str, collection: str) -> list[tuple[object, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(
            "SELECT d.source, d.title, d.metadata, c.position, c.text, c.char_start,"
            " c.char_end, c.token_count, c.metadata, c.embedding::text"
            " FROM pgcontext.chunk c JOIN pgcontext.document d ON d.id = c.document_id"
            " JOIN pgcontext.collection k ON k.id = c.collection_id WHERE k.name = %s"
            " ORDER BY d.source, c.position",
            (collection,),
        ).fetchall()


def test_export_then_import_restores_the_collection_without_the_model(
    store: Store, db_url: str, tmp_path: Path, fake_embedder: FakeEmbedder
) -> None:
    text = "# Heading\n\n" + " ".join(f"word{i}." for i in range(200))
    store.ingest(
        "src",
        [
            SourceDocument("a", "A", text, {"k": 1}),
            SourceDocument("b", None, "short text", {"k": 2}),
        ],
    )
    buffer = io.BytesIO()
    count = store.export("src", buffer)
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert count == len(lines) > 3
    assert set(lines[0]) >= {"document", "chunk_id", "text", "metadata", "embedding"}
    assert lines[0]["model"]["revision"] == fake_embedder.spec.revision

    dump = tmp_path / "dump.jsonl"
    dump.write_bytes(buffer.getvalue())
    fake_embedder.calls.clear()
    report = store.ingest("copy", [dump])
    assert (report.added, report.problems, report.chunks_written) == (2, [], count)
    assert fake_embedder.calls == []  # nothing was embedded again
    assert rows(db_url, "copy") == rows(db_url, "src")

    again = store.ingest("copy", [dump])
    assert (again.unchanged, again.chunks_written) == (2, 0)


def test_vectors_made_elsewhere_are_checked_against_the_collection(
    store: Store, tmp_path: Path
) -> None:
    store.ingest("c", [SourceDocument("seed", None, "seed text", {})])
    vector = FakeEmbedder().embed_query("purring cats")[0].tolist()
    records = [
        {"id": "ok", "text": "purring cats", "embedding": vector, "lang": "en"},
        {"id": "short", "text": "too few numbers", "embedding": vector[:3]},
        {"id": "other", "text": "another model", "embedding": vector, "model": "some/other-model"},
        {"id": "junk", "text": "not numbers", "embedding": ["a", "b"]},
    ]
    path = tmp_path / "vectors.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    report = store.ingest("c", [path])
    assert report.added == 1
    reasons = {
        p.source.split(":")[-1] if ":" in p.source else p.source: p.reason for p in report.problems
    }
    assert "3 dimensions" in reasons["short"] and "16" in reasons["short"]
    assert "some/other-model" in reasons["other"]
    assert "list of numbers" in reasons["4"]
    hit = store.search("purring cats", collection="c", k=1, options=SearchOptions(mode="dense"))[0]
    assert (hit.source, hit.metadata) == ("ok", {"lang": "en"})
    assert hit.score > 0.999
