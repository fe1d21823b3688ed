"""Structure-aware, token-bounded chunking of plain text. Pure: no database, no model.

The text is cut into units: blocks (separated by blank lines) when they fit, otherwise
their sentences, otherwise token windows. Units are packed greedily into chunks, which
prefer to end at a Markdown heading and never end with one. Every chunk is an exact
slice of the text and is re-counted on its own, so no chunk exceeds ``max_tokens``.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from itertools import pairwise

from pgcontext.tokens import TokenSpans

__all__ = ["MIN_MAX_TOKENS", "Chunk", "chunk_text"]

MIN_MAX_TOKENS = 8
_SEGMENT_CHARS = 32_768  # size of the pieces the whole text is tokenised in

_BLANK_LINE = re.compile(r"\n\s*\n")
_HEADING = re.compile(r" {0,3}#{1,6}[ \t]+(\S.*?)(?:[ \t]+#+)?[ \t]*$", re.M)
_FENCE = re.compile(r"^[ \t]*(?:```|~~~)", re.M)
# A sentence ends at .!? (maybe followed by closing quotes or brackets) plus whitespace,
# or at a line break; _starts_sentence checks what follows the whitespace.
_CLOSING = "\"')]\u201d\u2019"  # straight and typographic quotes, brackets
_OPENING = "\"'([\u201c\u2018"
_SENTENCE_GAP = re.compile(rf"[.!?][{re.escape(_CLOSING)}]*(\s+)|([ \t]*\n\s*)")


@dataclass(frozen=True)
class Chunk:
    """A piece of a document small enough to embed."""

    position: int  # 0-based order in the document
    text: str  # exactly document_text[start:end], no surrounding whitespace
    start: int
    end: int
    token_count: int  # len(counter.token_spans(text))
    heading: str | None  # the Markdown heading the chunk's own content falls under


@dataclass(frozen=True, slots=True)
class _Unit:
    """The smallest piece the packer moves: a block, a sentence or a token window."""

    start: int
    end: int
    heading: str | None  # heading in effect here; a heading block's own text
    section_start: bool = False  # first unit of a block that begins with a heading line
    heading_only: bool = False  # the whole block is one heading line
    splits: int = 0  # how often re-counting forced this unit to be cut smaller


class _TokenIndex:
    """Token positions of the whole text, so any span is counted with two bisections."""

    def __init__(self, spans: list[tuple[int, int]]) -> None:
        ordered = sorted(spans)
        self.starts = [start for start, _ in ordered]
        self.ends = [end for _, end in ordered]

    def count(self, start: int, end: int) -> int:
        """Tokens overlapping text[start:end]; straddling tokens count, to err on the safe side."""
        return bisect_left(self.starts, end) - bisect_right(self.ends, start)


def chunk_text(
    text: str, counter: TokenSpans, *, max_tokens: int, overlap_tokens: int = 0
) -> list[Chunk]:
    """Split `text` into chunks of at most `max_tokens` tokens of the embedding model
    (`counter`, usually the `Embedder` itself, gives their spans).

    Each chunk after the first repeats whole trailing units (sentences or blocks) of the
    previous one, up to `overlap_tokens` tokens, except where a new section begins.
    """
    _check_arguments(max_tokens, overlap_tokens)
    # One tokenisation of the whole text; every later estimate is two bisections.
    tokens = _TokenIndex(_text_spans(text, counter))
    units = _units(text, tokens, max_tokens)
    return _Packer(text, counter, tokens, units, max_tokens, overlap_tokens).pack()


def _check_arguments(max_tokens: int, overlap_tokens: int) -> None:
    if max_tokens < MIN_MAX_TOKENS:
        raise ValueError(f"max_tokens must be at least {MIN_MAX_TOKENS}, got {max_tokens}")
    if not 0 <= overlap_tokens < max_tokens // 2:
        raise ValueError(
            f"overlap_tokens must be >= 0 and < max_tokens // 2 ({max_tokens // 2}), "
            f"got {overlap_tokens}"
        )


def _text_spans(text: str, counter: TokenSpans) -> list[tuple[int, int]]:
    """Token spans of the whole text, tokenised in segments that end at a blank line.

    Tokenizers get slower per character on very long strings (3x for a 7 MB text),
    and a token rarely crosses a blank line; where one does, verification catches it.
    """
    spans: list[tuple[int, int]] = []
    start = 0
    while start < len(text):
        gap = _BLANK_LINE.search(text, start + _SEGMENT_CHARS)
        end = gap.end() if gap else len(text)
        spans += [(start + a, start + b) for a, b in counter.token_spans(text[start:end])]
        start = end
    return spans


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    """Move start and end inwards past whitespace."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _blocks(text: str) -> list[tuple[int, int]]:
    """Spans of the blank-line separated blocks of `text`, stripped, none empty."""
    bounds, start = [], 0
    for gap in _BLANK_LINE.finditer(text):
        bounds.append((start, gap.start()))
        start = gap.end()
    bounds.append((start, len(text)))
    stripped = (_strip(text, start, end) for start, end in bounds)
    return [(start, end) for start, end in stripped if start < end]


def _units(text: str, tokens: _TokenIndex, max_tokens: int) -> list[_Unit]:
    units: list[_Unit] = []
    heading: str | None = None
    in_fence = False
    for start, end in _blocks(text):
        # "# comment" inside a fenced code block is code, not a heading.
        match = None if in_fence else _HEADING.match(text, start, end)
        line_start = text.rfind("\n", 0, start) + 1  # blocks start after their indentation
        if len(_FENCE.findall(text, line_start, end)) % 2:
            in_fence = not in_fence
        if match:
            heading = match.group(1)
        pieces = _fit_block(text, tokens, start, end, max_tokens)
        # A heading too long for one chunk is cut like any text, not held back.
        heading_only = match is not None and match.end() == end and len(pieces) == 1
        for index, (piece_start, piece_end) in enumerate(pieces):
            first_piece = index == 0 and match is not None
            units.append(_Unit(piece_start, piece_end, heading, first_piece, heading_only))
    return units


def _fit_block(
    text: str, tokens: _TokenIndex, start: int, end: int, max_tokens: int
) -> list[tuple[int, int]]:
    """The block itself if it fits, else its sentences, long ones cut into token windows."""
    if tokens.count(start, end) <= max_tokens:
        return [(start, end)]
    pieces: list[tuple[int, int]] = []
    for sentence_start, sentence_end in _sentences(text, start, end):
        if tokens.count(sentence_start, sentence_end) <= max_tokens:
            pieces.append((sentence_start, sentence_end))
        else:
            pieces += _windows(text, tokens.starts, sentence_start, sentence_end, max_tokens)
    return pieces


def _sentences(text: str, start: int, end: int) -> list[tuple[int, int]]:
    spans, sentence_start = [], start
    for gap in _SENTENCE_GAP.finditer(text, start, end):
        after = gap.end()
        is_line_break = gap.group(2) is not None or "\n" in gap.group(1)
        if after >= end or not (is_line_break or _starts_sentence(text[after])):
            continue
        gap_start = gap.start(2) if gap.group(2) is not None else gap.start(1)
        spans.append((sentence_start, gap_start))
        sentence_start = after
    spans.append((sentence_start, end))
    return [span for span in spans if span[0] < span[1]]


def _starts_sentence(char: str) -> bool:
    return char.isupper() or char.isdigit() or char in _OPENING


def _windows(
    text: str, token_starts: list[int], start: int, end: int, size: int
) -> list[tuple[int, int]]:
    """Cut text[start:end] into pieces of about `size` tokens, at token starts.

    A cut moves back to a word start when one is in the second half of the window,
    so words are split only when a single word is longer than half a window.
    """
    first = bisect_right(token_starts, start)  # tokens that begin strictly inside
    last = bisect_left(token_starts, end)
    cuts, index = [], first + size - 1
    while index < last:
        index = _word_start(text, token_starts, index, index - size // 2)
        cuts.append(token_starts[index])
        index += size
    edges = [start, *cuts, end]
    stripped = (_strip(text, a, b) for a, b in pairwise(edges))
    return [(a, b) for a, b in stripped if a < b]


def _word_start(text: str, token_starts: list[int], index: int, lowest: int) -> int:
    """The latest token at or before `index` (and above `lowest`) that begins a word."""
    for candidate in range(index, max(lowest, 0), -1):
        position = token_starts[candidate]
        if text[position].isspace() or text[position - 1].isspace():
            return candidate
    return index


class _Packer:
    """Greedy packing of units into chunks, each verified by counting its own text."""

    def __init__(
        self,
        text: str,
        counter: TokenSpans,
        tokens: _TokenIndex,
        units: list[_Unit],
        max_tokens: int,
        overlap_tokens: int,
    ) -> None:
        self.text = text
        self.counter = counter
        self.tokens = tokens
        self.units = units
        self.max_tokens = max_tokens
        self.overlap_tokens = overlap_tokens

    def pack(self) -> list[Chunk]:
        chunks: list[Chunk] = []
        previous_first, own = -1, 0  # own: the first unit not in any chunk yet
        while own < len(self.units):
            first = self._overlap_start(previous_first, own) if chunks else own
            last = self._extend(first, own)
            first, last, count = self._verify(first, own, last)
            start, end = self.units[first].start, self.units[last].end
            heading = self.units[own].heading
            chunk = Chunk(len(chunks), self.text[start:end], start, end, count, heading)
            chunks.append(chunk)
            previous_first, own = first, last + 1
        return chunks

    def _estimate(self, first: int, last: int) -> int:
        return self.tokens.count(self.units[first].start, self.units[last].end)

    def _overlap_start(self, previous_first: int, own: int) -> int:
        """First unit of the next chunk: trailing units of the previous one, if they fit."""
        if not self.overlap_tokens or self.units[own].section_start:
            return own  # overlap across a heading would mix two sections
        first, budget = own, self.overlap_tokens
        # Never the whole previous chunk, or chunks could stop advancing.
        while first - 1 > previous_first and self._estimate(first - 1, own - 1) <= budget:
            first -= 1
        while first < own and self._estimate(first, own) > self.max_tokens:
            first += 1
        return first

    def _extend(self, first: int, own: int) -> int:
        """Last unit of the chunk: add units while they fit, stop early at a new section."""
        last = own
        while last + 1 < len(self.units):
            candidate = self.units[last + 1]
            if self._estimate(first, last + 1) > self.max_tokens:
                break
            if candidate.section_start and 2 * self._estimate(first, last) >= self.max_tokens:
                break
            last += 1
        return self._drop_trailing_headings(own, last)

    def _drop_trailing_headings(self, own: int, last: int) -> int:
        # A heading travels with the paragraph after it, so a chunk does not end on one.
        while last > own and self.units[last].heading_only:
            last -= 1
        return last

    def _count(self, first: int, last: int) -> int:
        start, end = self.units[first].start, self.units[last].end
        return len(self.counter.token_spans(self.text[start:end]))

    def _verify(self, first: int, own: int, last: int) -> tuple[int, int, int]:
        """Shrink the chunk until its own tokenisation fits: the hard guarantee.

        Tokens can differ from the whole-text estimate at the chunk's edges; then the
        last unit moves to the next chunk, then the overlap goes, then the unit is cut.
        """
        while (count := self._count(first, last)) > self.max_tokens:
            if last > own:
                last = self._drop_trailing_headings(own, last - 1)
            elif first < own:
                first += 1
            else:
                self._split_unit(own, count)
                last = own
        return first, last, count

    def _split_unit(self, index: int, count: int) -> None:
        """Replace a unit whose own text has too many tokens by token windows of it."""
        unit = self.units[index]
        spans = self.counter.token_spans(self.text[unit.start : unit.end])
        starts = sorted(unit.start + start for start, _ in spans)
        # At least two pieces, each shorter than the unit, so the loop in _verify ends;
        # a unit cut again gets smaller windows, so it rarely needs a third try.
        size = max(1, self.max_tokens - (count - self.max_tokens) - unit.splits)
        pieces = _windows(self.text, starts, unit.start, unit.end, size)
        if len(pieces) < 2:
            raise ValueError(
                f"the token counter gives {count} tokens for the text "
                f"{self.text[unit.start : unit.end]!r}, which cannot be cut below "
                f"max_tokens={self.max_tokens}"
            )
        self.units[index : index + 1] = [
            _Unit(
                start,
                end,
                unit.heading,
                unit.section_start and position == 0,
                unit.heading_only,
                unit.splits + 1,
            )
            for position, (start, end) in enumerate(pieces)
        ]
