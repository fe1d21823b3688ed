"""Search hits → passages: neighbouring chunks of a document stitched together, best first,
each chunk once and near-duplicates dropped. Pure: no database, no model."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from pgcontext.retrieve.hit import Hit

__all__ = ["NEAR_DUPLICATE_OVERLAP", "Passage", "merge_hits"]

_WORD = re.compile(r"\w+")
# Share of the smaller passage's word trigrams found in the other: at or above this, the two
# say the same thing (a copy with other markup, or one quoted inside the other).
NEAR_DUPLICATE_OVERLAP = 0.9


@dataclass(frozen=True)
class Passage:
    """A stretch of one document made of one or more retrieved chunks.

    `text[i]` is the document's character `char_start + i`: overlapping chunks are
    stitched without repetition, and a gap between consecutive chunks is filled with
    spaces so that offsets stay exact. `score` is the best score of its chunks.
    """

    n: int
    document_id: int
    source: str
    title: str | None
    text: str
    char_start: int
    char_end: int
    chunk_ids: tuple[int, ...]
    score: float
    trimmed: bool = False  # cut short to fit the budget: the span says how far it goes

    @classmethod
    def of(cls, hit: Hit) -> Passage:
        """A one-chunk passage (numbered later)."""
        span = (hit.char_start, hit.char_end)
        return cls(
            0, hit.document_id, hit.source, hit.title, hit.text, *span, (hit.chunk_id,), hit.score
        )


def merge_hits(hits: Sequence[Hit]) -> list[Passage]:
    """Stitch neighbouring chunks of each document into passages, best first, deduplicated.

    Passages are numbered 1..n in this order; `assemble_context` renumbers the ones it
    includes.
    """
    first_seen, unique = _unique_hits(hits)
    by_document: dict[int, list[Hit]] = {}
    for hit in unique:
        by_document.setdefault(hit.document_id, []).append(hit)
    passages = [p for doc_hits in by_document.values() for p in _merge_document(doc_hits)]
    # Ties keep retrieval order, so equal scores do not reshuffle between runs.
    passages.sort(key=lambda p: (-p.score, min(first_seen[c] for c in p.chunk_ids)))
    kept = _drop_near_duplicates(passages)
    return [replace(p, n=n) for n, p in enumerate(kept, start=1)]


def _unique_hits(hits: Sequence[Hit]) -> tuple[dict[int, int], list[Hit]]:
    """Each chunk once (its best-scored hit), with the index where it was first seen."""
    first_seen: dict[int, int] = {}
    best: dict[int, Hit] = {}
    for index, hit in enumerate(hits):
        first_seen.setdefault(hit.chunk_id, index)
        if hit.chunk_id not in best or hit.score > best[hit.chunk_id].score:
            best[hit.chunk_id] = hit
    return first_seen, list(best.values())


def _merge_document(hits: Sequence[Hit]) -> list[Passage]:
    """Merge one document's chunks, in document order, into runs of neighbours."""
    runs: list[tuple[Passage, int]] = []  # (passage, highest chunk position in it)
    for hit in sorted(hits, key=lambda h: (h.char_start, h.char_end, h.position)):
        if runs and _is_neighbour(*runs[-1], hit):
            passage, last_position = runs[-1]
            runs[-1] = (_extend(passage, hit), max(last_position, hit.position))
        else:
            runs.append((Passage.of(hit), hit.position))
    return [passage for passage, _ in runs]


def _is_neighbour(passage: Passage, last_position: int, hit: Hit) -> bool:
    """True if `hit` overlaps or touches the passage, or is the chunk right after it."""
    return hit.char_start <= passage.char_end or hit.position == last_position + 1


def _extend(passage: Passage, hit: Hit) -> Passage:
    """Append a later chunk of the same document without repeating the overlap."""
    if hit.char_start <= passage.char_end:
        # Chunk texts are exact slices of the document, so the overlap is known by offsets.
        tail = hit.text[passage.char_end - hit.char_start :]
    else:
        # Text between consecutive chunks was not retrieved (usually whitespace the
        # chunker dropped); spaces of the same length keep `text` aligned with offsets.
        tail = " " * (hit.char_start - passage.char_end) + hit.text
    return replace(
        passage,
        text=passage.text + tail,
        char_end=max(passage.char_end, hit.char_end),
        chunk_ids=(*passage.chunk_ids, hit.chunk_id),
        score=max(passage.score, hit.score),
    )


def _shingles(text: str) -> frozenset[tuple[str, ...]]:
    """Lower-cased word trigrams: punctuation and markup such as heading rules drop out."""
    words = _WORD.findall(text.lower())
    if len(words) < 3:
        return frozenset([tuple(words)]) if words else frozenset()
    return frozenset(zip(words, words[1:], words[2:], strict=False))


def _near_duplicate(a: frozenset[tuple[str, ...]], b: frozenset[tuple[str, ...]]) -> bool:
    smaller = min(len(a), len(b))
    return smaller > 0 and len(a & b) / smaller >= NEAR_DUPLICATE_OVERLAP


def _drop_near_duplicates(passages: Iterable[Passage]) -> list[Passage]:
    """Keep each passage unless a better one says nearly the same or contains it."""
    kept: list[Passage] = []
    seen: list[frozenset[tuple[str, ...]]] = []
    for passage in passages:
        shingles = _shingles(passage.text)
        # An empty passage carries nothing and would be "contained" in every other one.
        if not shingles or any(_near_duplicate(shingles, other) for other in seen):
            continue
        kept.append(passage)
        seen.append(shingles)
    return kept
