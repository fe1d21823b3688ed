"""Loading BEIR dataset directories: the happy path, every error, and the real SciFact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pgcontext.errors import DatasetError
from pgcontext.eval.beir import BeirDataset, load_beir

SCIFACT = Path("/work/shared/data/scifact")


def write_dataset(
    root: Path,
    *,
    queries: str | None = None,
    qrels: str | None = None,
    split: str = "test",
) -> Path:
    """A small BEIR directory; pass text to replace queries.jsonl or the qrels file."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "corpus.jsonl").write_text(
        json.dumps({"_id": "d1", "title": "T", "text": "doc one"}) + "\n", encoding="utf-8"
    )
    if queries is None:
        queries = "".join(
            json.dumps({"_id": qid, "text": text, "metadata": {}}) + "\n"
            for qid, text in [("q1", "first?"), ("q2", "zweite Frage ü"), ("q3", "unjudged")]
        )
    (root / "queries.jsonl").write_text(queries, encoding="utf-8")
    if qrels is None:
        qrels = "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t2\nq2\td1\t0\n"
    (root / "qrels").mkdir(exist_ok=True)
    (root / "qrels" / f"{split}.tsv").write_text(qrels, encoding="utf-8")
    return root


def test_loads_queries_and_qrels(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "tiny")
    dataset = load_beir(root)
    assert dataset == BeirDataset(
        name="tiny",
        path=root,
        corpus_path=root / "corpus.jsonl",
        queries={"q1": "first?", "q2": "zweite Frage ü"},  # q3 has no qrels: dropped
        qrels={"q1": {"d1": 1, "d2": 2}, "q2": {"d1": 0}},
    )


def test_accepts_a_string_path_another_split_and_blank_lines(tmp_path: Path) -> None:
    root = write_dataset(
        tmp_path / "ds",
        split="dev",
        queries='{"_id": "q1", "text": "a"}\n\n{"_id": 7, "text": "b"}\n',
        qrels="q1\td1\t1\r\n\r\n7\td1\t1\r\n",  # no header, CRLF line ends
    )
    dataset = load_beir(str(root), split="dev")
    assert dataset.queries == {"q1": "a", "7": "b"}
    assert dataset.qrels == {"q1": {"d1": 1}, "7": {"d1": 1}}


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"nope: no such dataset directory"):
        load_beir(tmp_path / "nope")


@pytest.mark.parametrize("name", ["corpus.jsonl", "queries.jsonl"])
def test_missing_file(tmp_path: Path, name: str) -> None:
    root = write_dataset(tmp_path / "ds")
    (root / name).unlink()
    with pytest.raises(DatasetError, match=rf"{name}: missing file"):
        load_beir(root)


def test_missing_split_lists_the_available_ones(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "ds", split="train")
    with pytest.raises(
        DatasetError, match=r"test\.tsv: missing qrels file.*available splits: train"
    ):
        load_beir(root)


@pytest.mark.parametrize(
    ("queries", "message"),
    [
        ('{"_id": "q1", "text": "a"}\n{"_id": "q2", "text": \n', r"queries\.jsonl:2: invalid JSON"),
        ('["q1", "a"]\n', r"queries\.jsonl:1: expected a JSON object"),
        ('{"text": "a"}\n', r"queries\.jsonl:1: '_id' must be a string, got None"),
        ('{"_id": "q1", "text": 3}\n', r"queries\.jsonl:1: 'text' must be a string, got 3"),
        (
            '{"_id": "q1", "text": "a"}\n{"_id": "q1", "text": "b"}\n',
            r"queries\.jsonl:2: query id 'q1' appears twice",
        ),
    ],
)
def test_malformed_queries(tmp_path: Path, queries: str, message: str) -> None:
    root = write_dataset(tmp_path / "ds", queries=queries, qrels="q1\td1\t1\n")
    with pytest.raises(DatasetError, match=message):
        load_beir(root)


@pytest.mark.parametrize(
    ("qrels", "message"),
    [
        ("query-id\tcorpus-id\tscore\nq1\td1\n", r"test\.tsv:2: expected 'query-id<TAB>corpus-id"),
        ("q1 d1 1\n", r"test\.tsv:1: expected 'query-id<TAB>corpus-id"),
        ("q1\td1\t1\tx\n", r"test\.tsv:1: expected"),
        ("q1\t\t1\n", r"test\.tsv:1: expected"),
        ("q1\td1\t1\nq1\td2\thigh\n", r"test\.tsv:2: score must be an integer, got 'high'"),
        ("query-id\tcorpus-id\tscore\n", r"test\.tsv: no relevance judgments"),
    ],
)
def test_malformed_qrels(tmp_path: Path, qrels: str, message: str) -> None:
    root = write_dataset(tmp_path / "ds", qrels=qrels)
    with pytest.raises(DatasetError, match=message):
        load_beir(root)


def test_qrels_for_unknown_queries(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "ds", qrels="q1\td1\t1\nq8\td1\t1\nq9\td2\t1\n")
    with pytest.raises(
        DatasetError, match=r"test\.tsv: 2 query id\(s\) not in queries.jsonl.*q8, q9"
    ):
        load_beir(root)


@pytest.mark.skipif(not SCIFACT.is_dir(), reason="SciFact is not at /work/shared/data/scifact")
def test_real_scifact() -> None:
    dataset = load_beir(SCIFACT)
    assert dataset.name == "scifact"
    assert dataset.corpus_path == SCIFACT / "corpus.jsonl"
    assert len(dataset.queries) == 300
    assert sum(len(docs) for docs in dataset.qrels.values()) == 339
    assert dataset.queries.keys() == dataset.qrels.keys()
