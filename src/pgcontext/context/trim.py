"""The best passage cut short to fit the budget: at a sentence end, else after a word."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TypeAlias

from pgcontext.context.passages import Passage

__all__ = ["Fits", "trim_to_fit"]

Fits: TypeAlias = Callable[[Sequence[Passage]], bool]
"""True if these passages, rendered into the messages, fit the budget."""

_SENTENCE_END = re.compile(r"[.!?][\"'\u201d\u2019)\]]*(?=\s)")
_PARAGRAPH_BREAK = re.compile(r"\s*\n\s*\n")
_WORD_END = re.compile(r"\S(?=\s)")


def trim_to_fit(passage: Passage, fits: Fits) -> Passage | None:
    """The longest prefix of the passage ending at a sentence, else a word, that fits."""
    for cuts in (_sentence_cuts(passage.text), _word_cuts(passage.text)):
        cut = _last_fitting(cuts, lambda c: fits([_truncate(passage, c)]))
        if cut is not None:
            return _truncate(passage, cut)
    return None


def _sentence_cuts(text: str) -> list[int]:
    """Offsets just after each sentence end or before each paragraph break, ascending."""
    ends = {m.end() for m in _SENTENCE_END.finditer(text)}
    ends |= {m.start() for m in _PARAGRAPH_BREAK.finditer(text)}
    return sorted(cut for cut in ends if 0 < cut < len(text))


def _word_cuts(text: str) -> list[int]:
    """Offsets just after each word that is followed by whitespace, ascending."""
    return [m.end() for m in _WORD_END.finditer(text)]


def _last_fitting(cuts: Sequence[int], fits: Callable[[int], bool]) -> int | None:
    """Binary search for the largest cut that fits (token counts grow with length).

    Every returned cut has been checked, so a tokenizer that is not perfectly monotone
    can only cost some text, never break the budget.
    """
    best: int | None = None
    low, high = 0, len(cuts) - 1
    while low <= high:
        middle = (low + high) // 2
        if fits(cuts[middle]):
            best, low = cuts[middle], middle + 1
        else:
            high = middle - 1
    return best


def _truncate(passage: Passage, cut: int) -> Passage:
    """The passage cut at `cut`; its span end moves with it (text and offsets align)."""
    text = passage.text[:cut].rstrip()
    return replace(passage, text=text, char_end=passage.char_start + len(text), trimmed=True)
