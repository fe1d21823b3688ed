"""Store against a real PostgreSQL with the deterministic fake embedder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from pgcontext import (
    CollectionNotFoundError,
    CollectionSettings,
    ConfigError,
    FilterError,
    ModelMismatchError,
    QueryError,
    SearchOptions,
    SourceDocument,
    Store,
)
from tests.support.fake_embedder import FakeEmbedder

ANIMALS = {
    "cats.txt": "Cats are small felines. They purr and sleep most of the day.",
    "dogs.txt": "Dogs are loyal canines. They bark at the postman and fetch sticks.",
    "fish.md": "# Fish\n\nFish swim in water and breathe through gills.",
}


def write_files(folder: Path, files: dict[str, str | bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return folder


def chunk_count(db_url: str, collection: str = "animals") -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pgcontext.chunk ch JOIN pgcontext.collection c"
            " ON c.id = ch.collection_id WHERE c.name = %s",
            (collection,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_ingest_folder_then_search_finds_the_matching_document(
    store: Store, tmp_path: Path
) -> None:
    folder = write_files(tmp_path / "docs", dict(ANIMALS))
    report = store.ingest("animals", [folder])
    assert (report.added, report.updated, report.unchanged, report.problems) == (3, 0, 0, [])
    hits = store.search("loyal canines bark at the postman", collection="animals", k=3)
    assert hits[0].source.endswith("dogs.txt")
    assert hits[0].score > hits[1].score
    assert hits[0].text in ANIMALS["dogs.txt"]


def test_reingesting_unchanged_documents_writes_nothing(
    store: Store, tmp_path: Path, fake_embedder: FakeEmbedder, db_url: str
) -> None:
    folder = write_files(tmp_path / "docs", dict(ANIMALS))
    store.ingest("animals", [folder])
    with psycopg.connect(db_url) as conn:
        before = conn.execute("SELECT id, xmin::text FROM pgcontext.chunk ORDER BY id").fetchall()
    calls = len(fake_embedder.calls)
    report = store.ingest("animals", [folder])
    assert (report.added, report.updated, report.unchanged) == (0, 0, 3)
    assert len(fake_embedder.calls) == calls, "unchanged documents must not be embedded again"
    with psycopg.connect(db_url) as conn:
        after = conn.execute("SELECT id, xmin::text FROM pgcontext.chunk ORDER BY id").fetchall()
    assert after == before, "unchanged documents must not be rewritten"


def test_changed_document_replaces_its_chunks_and_reuses_unchanged_embeddings(
    store: Store, fake_embedder: FakeEmbedder, db_url: str
) -> None:
    paragraphs = [f"Paragraph {i} talks about topic number {i} at some length." for i in range(12)]
    doc = SourceDocument("doc-1", "Doc", "\n\n".join(paragraphs), {})
    collection = "animals"
    store.create_collection(
        collection, settings=CollectionSettings(chunk_tokens=24, chunk_overlap=0)
    )
    store.ingest(collection, [doc])
    first = chunk_count(db_url)
    assert first > 3
    paragraphs[-1] = "The last paragraph now says something entirely different."
    changed = SourceDocument("doc-1", "Doc", "\n\n".join(paragraphs), {})
    fake_embedder.calls.clear()
    report = store.ingest(collection, [changed])
    assert (report.added, report.updated) == (0, 1)
    embedded = [text for call in fake_embedder.calls for text in call]
    assert len(embedded) == report.chunks_embedded
    assert 1 <= report.chunks_embedded < report.chunks_written
    assert all("entirely different" in text for text in embedded)
    assert chunk_count(db_url) == report.chunks_written
    hits = store.search("entirely different", collection=collection, k=1)
    assert "entirely different" in hits[0].text


def test_prune_removes_documents_whose_source_is_gone(store: Store, tmp_path: Path) -> None:
    folder = write_files(tmp_path / "docs", dict(ANIMALS))
    store.ingest("animals", [folder])
    (folder / "fish.md").unlink()
    report = store.ingest("animals", [folder], prune=True)
    assert report.removed == 1
    assert all(
        not h.source.endswith("fish.md") for h in store.search("fish", collection="animals", k=10)
    )


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("binary.txt", b"\x00\x01\x02binary", "binary"),
        ("latin1.txt", "caf\u00e9".encode("latin-1"), "UTF-8"),
        ("empty.txt", b"   \n\n", "empty"),
        ("bad.jsonl", b'{"_id": "a", "text": "fine"}\n{not json}\n', "invalid JSON"),
    ],
)
def test_bad_input_is_reported_and_the_rest_is_ingested(
    store: Store, tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    folder = write_files(tmp_path / "docs", {**ANIMALS, name: content})
    report = store.ingest("animals", [folder])
    assert not report.ok
    assert len(report.problems) == 1
    problem = report.problems[0]
    assert name in problem.source
    assert reason.lower() in problem.reason.lower()
    assert report.added == 3 + (1 if name == "bad.jsonl" else 0)


def test_missing_path_is_reported(store: Store, tmp_path: Path) -> None:
    folder = write_files(tmp_path / "docs", dict(ANIMALS))
    report = store.ingest("animals", [folder, tmp_path / "nope"])
    assert report.added == 3
    assert [p.source for p in report.problems] == [str((tmp_path / "nope").resolve())]


def test_no_chunk_exceeds_the_collection_chunk_size(store: Store, db_url: str) -> None:
    long_text = " ".join(f"word{i}" for i in range(2000)) + ". " + "A final sentence."
    store.create_collection(
        "animals", settings=CollectionSettings(chunk_tokens=40, chunk_overlap=8)
    )
    store.ingest("animals", [SourceDocument("long", None, long_text, {})])
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT text, token_count FROM pgcontext.chunk").fetchall()
    counter = FakeEmbedder()
    assert len(rows) > 40
    assert all(count <= 40 and counter.count_tokens(text) == count for text, count in rows)


def test_a_collection_refuses_another_embedding_model(store: Store, tmp_path: Path) -> None:
    store.ingest("animals", [write_files(tmp_path / "docs", dict(ANIMALS))])
    other = FakeEmbedder(dimensions=16, name="other-model", max_tokens=32)
    store.models.register_embedder(other)
    with pytest.raises(ModelMismatchError) as err:
        store.ingest("animals", [tmp_path / "docs"], model="other-model")
    assert "fake" in str(err.value) and "other-model" in str(err.value)
    with pytest.raises(ModelMismatchError):
        store.search("cats", collection="animals", model="other-model")


def test_collections_with_different_dimensions_share_one_database(
    store: Store, tmp_path: Path
) -> None:
    folder = write_files(tmp_path / "docs", dict(ANIMALS))
    wide = FakeEmbedder(dimensions=48, name="wide")
    store.models.register_embedder(wide)
    store.ingest("narrow", [folder])
    store.ingest("wide", [folder], model="wide")
    assert store.collection("narrow").model.dimensions == 16
    assert store.collection("wide").model.dimensions == 48
    for name in ("narrow", "wide"):
        assert store.search("purring felines", collection=name, k=1)[0].source.endswith("cats.txt")


def test_metadata_filters_select_matching_chunks(store: Store) -> None:
    docs = [
        SourceDocument(
            f"d{i}",
            None,
            f"shared words about item {i}",
            {"year": 2000 + i, "lang": "en" if i % 2 else "de", "tags": ["x"] if i < 3 else []},
        )
        for i in range(10)
    ]
    store.ingest("items", docs)

    def sources(filter_: dict[str, Any]) -> set[str]:
        return {
            h.source for h in store.search("shared words", collection="items", k=10, filter=filter_)
        }

    assert sources({"lang": "en"}) == {"d1", "d3", "d5", "d7", "d9"}
    assert sources({"year": {"$gte": 2007}}) == {"d7", "d8", "d9"}
    assert sources({"$or": [{"year": 2000}, {"tags": "x", "lang": "en"}]}) == {"d0", "d1"}
    assert sources({"year": {"$in": [2002, 2004, 1999]}}) == {"d2", "d4"}
    with pytest.raises(FilterError, match=r"\$near"):
        store.search("words", collection="items", filter={"year": {"$near": 3}})
    with pytest.raises(FilterError, match="a b"):
        store.search("words", collection="items", filter={"a b": 1})


def test_unknown_collection_is_a_clear_error(store: Store) -> None:
    with pytest.raises(CollectionNotFoundError, match="nope"):
        store.search("anything", collection="nope")


def test_sql_function_is_callable_from_plain_sql(store: Store, db_url: str, tmp_path: Path) -> None:
    store.ingest("animals", [write_files(tmp_path / "docs", dict(ANIMALS))])
    vector = FakeEmbedder().embed_query("Fish swim in water")[0]
    literal = "[" + ",".join(f"{x:.6f}" for x in vector) + "]"
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT source, score FROM pgcontext.search('animals', %s::vector, 2)", (literal,)
        ).fetchall()
        assert rows[0][0].endswith("fish.md") and len(rows) == 2
        filtered = conn.execute(
            "SELECT source FROM pgcontext.search('animals', %s::vector, 5, '$.format == \"md\"')",
            (literal,),
        ).fetchall()
        assert [r[0][-7:] for r in filtered] == ["fish.md"]
        with pytest.raises(psycopg.errors.DataException, match="16"):
            conn.execute("SELECT * FROM pgcontext.search('animals', '[1,2,3]'::vector, 2)")
        conn.rollback()
        with pytest.raises(psycopg.errors.NoDataFound, match="nope"):
            conn.execute("SELECT * FROM pgcontext.search('nope', %s::vector, 2)", (literal,))


def test_search_runs_through_the_collections_hnsw_index(store: Store, db_url: str) -> None:
    docs = [SourceDocument(f"d{i}", None, f"document number {i} of many", {}) for i in range(300)]
    store.ingest("many", docs)
    vector = FakeEmbedder().embed_query("document number 7 of many")[0]
    literal = "[" + ",".join(f"{x:.6f}" for x in vector) + "]"
    notices: list[str] = []
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
        # auto_explain reports the plans of the statements the function runs inside.
        conn.execute("LOAD 'auto_explain'")
        conn.execute("SET auto_explain.log_min_duration = 0")
        conn.execute("SET auto_explain.log_nested_statements = on")
        conn.execute("SET auto_explain.log_level = 'notice'")
        # At 300 rows a scan and a sort are cheaper than the HNSW index: forbid sorting, so
        # the plan shows whether the query can use the index at all (at scale it is chosen).
        conn.execute("SET enable_sort = off")
        rows = conn.execute(
            "SELECT source FROM pgcontext.search('many', %s::vector, 5)", (literal,)
        ).fetchall()
    assert rows[0][0] == "d7"
    index_plans = [n for n in notices if "chunk_embedding_hnsw_" in n]
    assert index_plans, "the dense search did not use the collection's HNSW index:\n" + "\n".join(
        notices
    )


def test_context_stays_within_budget_and_cites_sources(store: Store, tmp_path: Path) -> None:
    store.ingest("animals", [write_files(tmp_path / "docs", dict(ANIMALS))])
    result = store.context(
        "Dogs are loyal canines that bark at the postman?", collection="animals", budget_tokens=200
    )
    assert result.tokens <= 200
    assert [m["role"] for m in result.messages] == ["system", "user"]
    assert result.messages[1]["content"] == "Dogs are loyal canines that bark at the postman?"
    assert result.citations and result.citations[0].source.endswith("dogs.txt")
    assert '<passage n="1"' in result.messages[0]["content"]


def test_characters_postgres_cannot_store_are_reported_not_fatal(
    store: Store, tmp_path: Path
) -> None:
    records = [
        '{"_id": "good-1", "text": "Cats purr."}',
        '{"_id": "nul", "text": "before\\u0000after"}',
        '{"_id": "meta-nul", "text": "fine text", "note": "x\\u0000y"}',
        '{"_id": "surrogate", "text": "lone \\ud800 surrogate"}',
        '{"_id": "good-2", "text": "Dogs bark."}',
        # The six characters \u0000 (as the JSON docs write them) are ordinary text.
        '{"_id": "literal", "text": "JSON escapes NUL as \\\\u0000 in strings."}',
    ]
    path = tmp_path / "records.jsonl"
    path.write_text("\n".join(records) + "\n", encoding="utf-8")
    report = store.ingest("animals", [path])
    assert report.added == 3
    reasons = {p.source: p.reason for p in report.problems}
    assert set(reasons) == {"nul", "meta-nul", "surrogate"}
    assert "NUL" in reasons["nul"] and "surrogate" in reasons["surrogate"]


def test_prune_is_skipped_when_an_input_failed(store: Store, tmp_path: Path) -> None:
    folder = write_files(tmp_path / "docs", dict(ANIMALS))
    store.ingest("animals", [folder])
    (folder / "cats.txt").unlink()
    (folder / "broken.txt").write_bytes(b"\x00binary")
    report = store.ingest("animals", [folder], prune=True)
    assert report.prune_skipped and report.removed == 0
    assert any(
        h.source.endswith("cats.txt") for h in store.search("cats", collection="animals", k=5)
    )


@pytest.mark.parametrize("mode", ["dense", "hybrid"])
def test_a_ready_vector_of_the_wrong_size_is_a_query_error(
    store: Store, tmp_path: Path, mode: str
) -> None:
    store.ingest("animals", [write_files(tmp_path / "docs", dict(ANIMALS))])
    wrong = [0.5] * (store.embedder().spec.dimensions + 1)
    with pytest.raises(QueryError, match=r"the given vector: .*dimensions") as raised:
        store.search("cats", collection="animals", options=SearchOptions(mode=mode), vector=wrong)
    assert raised.value.parameter == "vector"


def test_k_is_bounded_in_sql(store: Store, tmp_path: Path, db_url: str) -> None:
    store.ingest("animals", [write_files(tmp_path / "docs", dict(ANIMALS))])
    assert len(store.search("cats", collection="animals", k=1000)) == 3
    with pytest.raises(ConfigError, match="k must be between 1 and 1000, not 1001"):
        store.search("cats", collection="animals", k=1001)
    vector = store.embedder().embed_query("cats")
    with pytest.raises(ConfigError, match="k must be between 1 and 1000, not 1001"):
        store.search(
            "cat", collection="animals", options=SearchOptions(mode="dense"), vector=vector, k=1001
        )
    with (
        psycopg.connect(db_url) as conn,
        pytest.raises(psycopg.errors.InvalidParameterValue, match="between 1 and 1000"),
    ):
        conn.execute(
            "SELECT * FROM pgcontext.search('animals', %s::vector, 1001)",
            (str([float(x) for x in vector.flat]),),
        )
