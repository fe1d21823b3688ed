"""One bad value is that record's problem: the good records around it are written, and
whatever ingest accepts comes back exactly through the export and an import."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pgcontext import ExportError, SearchOptions, SourceDocument, Store
from tests.integration.test_export_import import rows
from tests.support.fake_embedder import FakeEmbedder

KEYWORD = SearchOptions(mode="keyword")


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


def _write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _good(n: int) -> str:
    return json.dumps({"id": f"good-{n}", "text": f"Good record number {n} about cats."})


def _reasons(problems: list[Any]) -> dict[str, str]:
    return {p.source.rsplit(":", 1)[-1]: p.reason for p in problems}


def test_one_bad_value_among_good_records_is_reported_alone(store: Store, tmp_path: Path) -> None:
    bad = {
        5: '{"id": "inf", "text": "overflowing score", "score": 1e400}',
        10: '{"id": "e20", "text": "a float beyond 64 bits", "n": 1e20}',
        15: '{"id": "u64", "text": "an integer beyond 64 bits", "n": 18446744073709551616}',
        20: json.dumps({"id": "deep", "text": "nested too deep", "tree": _nested(300)}),
        25: json.dumps({"id": "keyed", "text": "nested too deep", "a": {"b": _nested(63)}}),
    }
    lines = []
    for n in range(1, 36):
        lines.append(bad.get(n) or _good(n))
    path = _write_jsonl(tmp_path / "mixed.jsonl", lines)

    report = store.ingest("c", [path])

    assert (report.added, len(report.problems)) == (30, 5)
    reasons = _reasons(report.problems)
    assert reasons["5"] == (
        "line 5: invalid JSON: number 1e400 is too large for a double (it would be Infinity);"
        " write it as a string"
    )
    assert reasons["e20"] == (
        "metadata['n']: number 1e+20 is outside the signed 64-bit range (PostgreSQL returns it"
        " as an integer of all its digits); write it as a string"
    )
    assert reasons["u64"] == (
        "metadata['n']: integer 18446744073709551616 is outside the signed 64-bit range;"
        " write it as a string"
    )
    assert reasons["deep"].endswith("is nested more than 64 levels deep")
    assert reasons["keyed"].startswith("metadata['a']['b'][0]")
    assert len(store.search("cats", collection="c", k=50, options=KEYWORD)) == 30


def test_one_bad_number_in_a_json_array_is_that_records_problem(
    store: Store, tmp_path: Path
) -> None:
    records = [_good(n) for n in range(6)]
    records[1] = '{"id": "inf", "text": "overflowing score", "score": 1e400}'
    records[3] = '{"id": "nan", "text": "not a number", "score": NaN}'
    records[4] = '{"id": "long", "text": "too many digits", "n": ' + "9" * 5000 + "}"
    path = tmp_path / "records.json"
    path.write_text("[\n" + ",\n".join(records) + "\n]", encoding="utf-8")

    report = store.ingest("c", [path])

    assert report.added == 3
    reasons = {p.source.rsplit("[", 1)[-1]: p.reason for p in report.problems}
    assert reasons == {
        "1]": "invalid JSON: number 1e400 is too large for a double (it would be Infinity);"
        " write it as a string",
        "3]": "invalid JSON: NaN is not valid JSON",
        "4]": "invalid JSON: an integer of 5000 digits is too long",
    }
    assert len(store.search("cats", collection="c", k=50, options=KEYWORD)) == 3

    broken = tmp_path / "broken.json"
    broken.write_text('[{"id": "a", "text": "x"}, {"id": ', encoding="utf-8")
    whole = store.ingest("c", [broken]).problems
    assert len(whole) == 1 and whole[0].reason.startswith("invalid JSON: Expecting value")


def test_precomputed_values_are_checked_per_record(store: Store, tmp_path: Path) -> None:
    store.ingest("v", [SourceDocument("seed", None, "seed text", {})])
    vector = FakeEmbedder().embed_query("purring cats")[0].tolist()

    def record(id_: str, **fields: Any) -> str:
        return json.dumps({"id": id_, "text": f"text of {id_}", "embedding": vector, **fields})

    lines = [
        record("ok-1"),
        record("f32", embedding=[1e39, *vector[1:]]),
        record("zero", embedding=[0.0] * len(vector)),
        record("tiny", embedding=[1e-30] * len(vector)),
        record("huge", embedding=[1e30] * len(vector)),
        record("ok-2", token_count=3),
        record("negative", token_count=-1),
        record("tokens", token_count=2**31),
        record("position", position=2**31),
        record("span", span=[2**31, 2**31 + len("text of span")]),
        record("ok-3", position=2**31 - 1),
        record("bigint").replace(f"[{vector[0]}", f"[1{'0' * 400}", 1),
        # Two chunks of one document, the second far beyond int4.
        record("two", position=0, span=[0, len("text of two")]),
        record("two", position=1, span=[2**31 + 5, 2**31 + 5 + len("text of two")]),
    ]
    report = store.ingest("v", [_write_jsonl(tmp_path / "vectors.jsonl", lines)])

    assert report.added == 3, report.problems
    reasons = _reasons(report.problems)
    assert reasons == {
        "f32": "chunk 0: embedding component 0 is 1e+39, beyond float32",
        "zero": "chunk 0: embedding is all zeros (or too close to zero): cosine similarity"
        " is undefined",
        "tiny": "chunk 0: embedding is all zeros (or too close to zero): cosine similarity"
        " is undefined",
        "huge": "chunk 0: embedding's components are too large: the sum of their squares"
        " overflows float32",
        "negative": "chunk 0: token_count is -1; it must be a whole number from 0 to 2147483647",
        "tokens": "chunk 0: token_count is 2147483648; it must be a whole number from 0 to"
        " 2147483647",
        "position": "chunk 2147483648: position is 2147483648; it must be a whole number from 0"
        " to 2147483647",
        "span": "chunk 0: span start is 2147483648; it must be a whole number from 0 to 2147483647",
        "bigint": "chunk 0: embedding component 0 is of about 401 digits, beyond float32",
        "two": "chunk 1: span start is 2147483653; it must be a whole number from 0 to 2147483647",
    }
    hits = store.search("purring cats", collection="v", k=10, options=SearchOptions(mode="dense"))
    assert {h.source for h in hits} == {"seed", "ok-1", "ok-2", "ok-3"}
    assert all(h.score == h.score for h in hits)  # no NaN


EDGE_VALUES: dict[str, Any] = {
    "int64_max": 2**63 - 1,
    "int64_min": -(2**63),
    "big_float": 9.2e18,
    "integral_float": 1.5e16,
    "one": 1.0,
    "tenth": 0.1,
    "tiny": 5e-324,
    "small": 1.5e-300,
    "precise": 0.1 + 0.2,
    "label": "naïve ☃ \U0001f600 \u2028 \\u0000",
    "empty": {"list": [], "object": {}, "string": ""},
    "flags": [True, False, None],
    "deep": _nested(63),
}


def test_export_round_trips_every_value_ingest_accepts(
    store: Store, db_url: str, tmp_path: Path
) -> None:
    lines = [
        json.dumps({"id": "edges", "text": "Edge values.", **EDGE_VALUES}),
        '{"id": "long-id", "text": "Ids stay exact.", "n": 9223372036854775807}',
        '{"id": 1180591620717411303424, "text": "A big integer id."}',
        '{"id": 1180591620717411303425, "text": "Its neighbour."}',
        # Refused at ingest: these once broke the export halfway.
        '{"id": "e20", "text": "Too big.", "n": 1e20}',
        json.dumps({"id": "deep", "text": "Too deep.", "tree": _nested(300)}),
    ]
    source = _write_jsonl(tmp_path / "in.jsonl", lines)
    report = store.ingest("src", [source])
    assert (report.added, sorted(p.source for p in report.problems)) == (4, ["deep", "e20"])

    dump = tmp_path / "dump.jsonl"
    count = store.export("src", dump)
    assert count == 4
    restored = store.ingest("copy", [dump])
    assert (restored.added, restored.problems) == (4, [])
    assert rows(db_url, "copy") == rows(db_url, "src")
    stored = {row[0]: row[2] for row in rows(db_url, "copy")}
    assert set(stored) == {"edges", "long-id", "1180591620717411303424", "1180591620717411303425"}
    assert stored["edges"] == EDGE_VALUES
    assert stored["long-id"] == {"n": 2**63 - 1}


def _corrupt(db_url: str, source: str) -> None:
    """Data stored by an older version, before ingest refused numbers jsonb cannot give back."""
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "UPDATE pgcontext.document SET metadata = '{\"n\": 1e20}' WHERE source = %s",
            (source,),
        )


def test_a_failed_export_leaves_no_file_and_names_the_chunk(
    store: Store, db_url: str, tmp_path: Path
) -> None:
    store.ingest("c", [SourceDocument(name, None, f"text of {name}", {}) for name in "abc"])
    _corrupt(db_url, "b")
    target = tmp_path / "out.jsonl"

    with pytest.raises(ExportError) as caught:
        store.export("c", target)
    message = str(caught.value)
    assert "document 'b', chunk 0" in message and "Integer exceeds 64-bit range" in message
    assert "nothing was written" in message
    assert list(tmp_path.iterdir()) == []

    target.write_text("an older export\n")
    with pytest.raises(ExportError):
        store.export("c", target)
    assert target.read_text() == "an older export\n"
    assert list(tmp_path.iterdir()) == [target]

    stream = io.BytesIO()
    with pytest.raises(ExportError, match="incomplete"):
        store.export("c", stream)


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (SourceDocument("t", 123, "text", {}), "title must be a string or None, not int 123"),  # type: ignore[arg-type]
        (SourceDocument("n", None, None, {}), "text must be a string, not NoneType None"),  # type: ignore[arg-type]
        (SourceDocument(5, None, "text", {}), "source must be a string, not int 5"),  # type: ignore[arg-type]
        (SourceDocument("m", None, "text", [1]), "metadata must be a dict, not list [1]"),  # type: ignore[arg-type]
        ("not a document", "not a SourceDocument: str 'not a document'"),
        (
            SourceDocument("s", None, "text", {}, chunks="ab"),  # type: ignore[arg-type]
            "chunks must be a tuple of PrecomputedChunk, not str 'ab'",
        ),
        (
            SourceDocument("e", None, "text", {}, chunks=("x",)),  # type: ignore[arg-type]
            "chunks must be a tuple of PrecomputedChunk, not of str 'x'",
        ),
    ],
)
def test_a_document_of_the_wrong_types_is_that_documents_problem(
    store: Store, document: Any, reason: str
) -> None:
    good = [SourceDocument(f"good-{i}", None, f"good text {i}", {}) for i in range(2)]
    report = store.ingest("c", [good[0], document, good[1]])
    assert report.added == 2
    assert [p.reason for p in report.problems] == [reason]
