"""Load a BEIR dataset directory: queries and relevance judgments, with the corpus left on disk.

The layout (https://github.com/beir-cellar/beir)::

    <name>/corpus.jsonl        {"_id": ..., "title": ..., "text": ...} per line
    <name>/queries.jsonl       {"_id": ..., "text": ...} per line
    <name>/qrels/<split>.tsv   query-id <TAB> corpus-id <TAB> score, after a header line
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pgcontext.errors import DatasetError

__all__ = ["BeirDataset", "load_beir"]

_QRELS_HEADER = ["query-id", "corpus-id", "score"]


@dataclass(frozen=True)
class BeirDataset:
    """One split of a BEIR dataset. Only the queries that have relevance judgments are kept."""

    name: str
    path: Path
    corpus_path: Path
    """``corpus.jsonl``, not read here: ingestion streams it."""
    queries: dict[str, str]
    """Query id to query text."""
    qrels: dict[str, dict[str, int]]
    """Query id to {document id: graded relevance}."""


def load_beir(path: str | Path, split: str = "test") -> BeirDataset:
    """Read ``queries.jsonl`` and ``qrels/<split>.tsv`` under ``path``; check ``corpus.jsonl``."""
    root = Path(path)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such dataset directory (expected a BEIR dataset)")
    corpus_path = _require_file(root / "corpus.jsonl")
    qrels = _read_qrels(_qrels_path(root, split))
    queries = _read_queries(_require_file(root / "queries.jsonl"))
    unknown = sorted(qrels.keys() - queries.keys())
    if unknown:
        raise DatasetError(
            f"{root / 'qrels' / (split + '.tsv')}: {len(unknown)} query id(s) not in "
            f"queries.jsonl, e.g. {', '.join(unknown[:5])}; the dataset is incomplete"
        )
    kept = {query_id: queries[query_id] for query_id in qrels}
    return BeirDataset(root.name, root, corpus_path, kept, qrels)


def _require_file(path: Path) -> Path:
    if not path.is_file():
        raise DatasetError(
            f"{path}: missing file; a BEIR dataset directory holds corpus.jsonl, "
            "queries.jsonl and qrels/<split>.tsv"
        )
    return path


def _qrels_path(root: Path, split: str) -> Path:
    path = root / "qrels" / f"{split}.tsv"
    if not path.is_file():
        available = sorted(p.stem for p in (root / "qrels").glob("*.tsv"))
        raise DatasetError(
            f"{path}: missing qrels file for split {split!r}; "
            f"available splits: {', '.join(available) or 'none'}"
        )
    return path


def _read_queries(path: Path) -> dict[str, str]:
    queries: dict[str, str] = {}
    for line_number, record in json_lines(path):
        query_id, text = record.get("_id"), record.get("text")
        if not isinstance(query_id, str | int) or isinstance(query_id, bool):
            raise DatasetError(f"{path}:{line_number}: '_id' must be a string, got {query_id!r}")
        if not isinstance(text, str):
            raise DatasetError(f"{path}:{line_number}: 'text' must be a string, got {text!r}")
        if str(query_id) in queries:
            raise DatasetError(f"{path}:{line_number}: query id {query_id!r} appears twice")
        queries[str(query_id)] = text
    return queries


def json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line of a JSON Lines file."""
    with path.open(encoding="utf-8") as lines:
        for line_number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}:{line_number}: invalid JSON: {exc.msg}") from exc
            if not isinstance(record, dict):
                raise DatasetError(f"{path}:{line_number}: expected a JSON object per line")
            yield line_number, record


def _read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8", newline="") as lines:
        for line_number, row in enumerate(csv.reader(lines, delimiter="\t"), start=1):
            if not row or (line_number == 1 and row == _QRELS_HEADER):
                continue
            query_id, doc_id, score = _qrels_row(path, line_number, row)
            qrels.setdefault(query_id, {})[doc_id] = score
    if not qrels:
        raise DatasetError(f"{path}: no relevance judgments")
    return qrels


def _qrels_row(path: Path, line_number: int, row: list[str]) -> tuple[str, str, int]:
    """Check one qrels row: three tab-separated fields, the last an integer."""
    if len(row) != 3 or not row[0] or not row[1]:
        raise DatasetError(
            f"{path}:{line_number}: expected 'query-id<TAB>corpus-id<TAB>score', got {row!r}"
        )
    try:
        score = int(row[2])
    except ValueError as exc:
        raise DatasetError(
            f"{path}:{line_number}: score must be an integer, got {row[2]!r}"
        ) from exc
    return row[0], row[1], score
