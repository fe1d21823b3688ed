"""`pgcontext eval-answers`: a rough, cheap signal of answer quality.

For each record {question, answer, reference[, passages]}:
- similarity: cosine similarity of the answer's and the reference's embeddings. It rewards
  saying the same thing in other words, but also a fluent answer on the right topic that
  gets the key fact wrong, and it cannot tell a negation from its opposite;
- key-term coverage: the share of the reference's content words (lower-cased, stop words
  and words under three letters dropped) found in the cited passages' text. It says
  whether the retrieved evidence could support the reference, not whether the answer
  used it.
Neither replaces human judgement or an LLM judge on a real test set.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pgcontext.embed.base import Embedder
from pgcontext.errors import DatasetError
from pgcontext.eval.beir import json_lines

_WORD = re.compile(r"[^\W_](?:[\w'-]*[^\W_])?")
_STOP_WORDS_TEXT = """a about above after again against all also am an and any are as at be
    because been
    before being below between both but by can could did do does doing down during each few
    for from further had has have having he her here hers herself him himself his how i if
    in into is it its itself just me more most my myself no nor not now of off on once only
    or other our ours ourselves out over own same she should so some such than that the
    their theirs them themselves then there these they this those through to too under
    until up very was we were what when where which while who whom why will with would you
    your yours yourself yourselves use used using may might must one two also"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())


def key_terms(text: str) -> list[str]:
    """The text's content words, lower-cased, each once, in order of appearance."""
    words = (w.lower() for w in _WORD.findall(text))
    return list(dict.fromkeys(w for w in words if len(w) >= 3 and w not in STOP_WORDS))


@dataclass(frozen=True)
class AnswerScore:
    line: int
    question: str
    similarity: float
    key_terms: list[str]
    covered: list[str] | None  # None: the record has no passages

    @property
    def coverage(self) -> float | None:
        if self.covered is None or not self.key_terms:
            return None
        return len(self.covered) / len(self.key_terms)

    def as_json(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "question": self.question,
            "similarity": round(self.similarity, 4),
            "coverage": None if self.coverage is None else round(self.coverage, 4),
            "missing_terms": None
            if self.covered is None
            else [t for t in self.key_terms if t not in self.covered],
        }


@dataclass(frozen=True)
class AnswerReport:
    model: str
    scores: list[AnswerScore]

    def as_json(self) -> dict[str, Any]:
        coverages = [s.coverage for s in self.scores if s.coverage is not None]
        return {
            "model": self.model,
            "records": len(self.scores),
            "mean_similarity": round(float(np.mean([s.similarity for s in self.scores])), 4),
            "mean_coverage": round(float(np.mean(coverages)), 4) if coverages else None,
            "scores": [s.as_json() for s in self.scores],
        }


@dataclass(frozen=True)
class AnswerRecord:
    line: int
    question: str
    answer: str
    reference: str
    passages: list[str] | None


def read_records(path: Path) -> list[AnswerRecord]:
    """Every record of the JSONL file, or a DatasetError naming the line and the field."""
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    try:
        records = [_record(path, n, data) for n, data in json_lines(path)]
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot be read: {exc}") from None
    if not records:
        raise DatasetError(f"{path}: no records; each line is {{question, answer, reference}}")
    return records


def _record(path: Path, line: int, data: dict[str, Any]) -> AnswerRecord:
    where = f"{path}:{line}"
    fields = {}
    for key in ("question", "answer", "reference"):
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            raise DatasetError(f"{where}: {key!r} must be a non-empty string")
        fields[key] = value
    return AnswerRecord(line, **fields, passages=_passages(where, data))


def _passages(where: str, data: dict[str, Any]) -> list[str] | None:
    """`passages` (strings) or `cited_passages` ({"text": ...}, as `ask --json` writes)."""
    raw = data.get("passages", data.get("cited_passages"))
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise DatasetError(f"{where}: 'passages' must be a list")
    texts = [p.get("text") if isinstance(p, dict) else p for p in raw]
    if not all(isinstance(t, str) for t in texts):
        raise DatasetError(f"{where}: each passage must be a string or an object with 'text'")
    return [str(t) for t in texts]


def score_answers(records: Iterable[AnswerRecord], embedder: Embedder) -> AnswerReport:
    records = list(records)
    answers = embedder.embed_documents([r.answer for r in records])
    references = embedder.embed_documents([r.reference for r in records])
    norms = np.linalg.norm(answers, axis=1) * np.linalg.norm(references, axis=1)
    # Cosine even for a plugin embedder that does not normalise; a zero vector scores 0.
    similarities = np.divide(
        np.sum(answers * references, axis=1), norms, out=np.zeros(len(records)), where=norms > 0
    )
    scores = []
    for record, similarity in zip(records, similarities, strict=True):
        terms = key_terms(record.reference)
        covered = None
        if record.passages is not None:
            present = set(key_terms(" ".join(record.passages)))
            covered = [t for t in terms if t in present]
        scores.append(AnswerScore(record.line, record.question, float(similarity), terms, covered))
    return AnswerReport(embedder.spec.name, scores)
