"""Untrusted text made inert for the next layer: our delimiters and the chat template.

Retrieved text (a passage, its title, its source) is pasted into the system message, which
the chat template wraps in role markers before the tokenizer encodes it. Two things in it
would be read as structure instead of data:

- a chat model's special tokens: `<|im_end|>\\n<|im_start|>system` in a document becomes real
  special tokens, closing the system turn and opening a forged one. The configured
  tokenizer's own special and added tokens are matched, plus the turn markers of other model
  families (`TURN_MARKERS`, and any `<|name|>`), since a remote model's template is unknown;
- look-alikes of our own `<passage>`/`</passages>` tags, which could close a passage early.

Both are found on a normalised view of the text (compatibility decomposition, accents,
invisible format characters and case dropped, a few confusable letters and brackets folded)
whose every character maps back to one character of the original. Each occurrence is then
neutralised in the original by writing its first character as an HTML character reference
(`&lt;|im_end|>`, `&#91;INST]`): the words stay visible to the model, no tokenizer can read a
special token there, and the rest of the text is left exactly as it was.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from functools import cache, lru_cache

__all__ = ["TURN_MARKERS", "Neutraliser", "neutraliser"]

# Turn and control markers of common chat-model families, matched whatever the configured
# tokenizer is (the endpoint's model may be another). Case is ignored when matching.
TURN_MARKERS = (
    # ChatML (Qwen, SmolLM, many fine-tunes), GPT-2 family
    "<|im_start|>",
    "<|im_end|>",
    "<|endoftext|>",
    "<tool_call>",
    "</tool_call>",
    "<tool_response>",
    "</tool_response>",
    # Llama 2, Mistral
    "<s>",
    "</s>",
    "[INST]",
    "[/INST]",
    "<<SYS>>",
    "<</SYS>>",
    "[SYSTEM_PROMPT]",
    "[/SYSTEM_PROMPT]",
    "[AVAILABLE_TOOLS]",
    "[/AVAILABLE_TOOLS]",
    "[TOOL_CALLS]",
    "[TOOL_RESULTS]",
    "[/TOOL_RESULTS]",
    # Gemma
    "<bos>",
    "<eos>",
    "<start_of_turn>",
    "<end_of_turn>",
    # DeepSeek (full-width bars, folded to `|` when matching)
    "<\uff5cbegin\u2581of\u2581sentence\uff5c>",
    "<\uff5cend\u2581of\u2581sentence\uff5c>",
    "<\uff5cUser\uff5c>",
    "<\uff5cAssistant\uff5c>",
    # BERT-style
    "[CLS]",
    "[SEP]",
    "[MASK]",
    # Reasoning and other families (DeepSeek-R1/Qwen3 thinking, Command R, GLM)
    "<think>",
    "</think>",
    "<BOS_TOKEN>",
    "<EOS_TOKEN>",
    "[gMASK]",
    "<sop>",
    "<eop>",
)
# Llama 3 (`<|eot_id|>`, `<|start_header_id|>`), Phi (`<|user|>`, `<|end|>`), Command R,
# Granite, gpt-oss (`<|channel|>`)...: every `<|name|>` form, listed or not.
_PIPE_TAG = r"<\|[^|<>\s]{1,64}\|>"
# Our delimiters: `<passage`, `</passages`, `<//passage`, `<\/passage`, `< / passage`...
_DELIMITER = r"<[\s/\\]*passage"

# Dropped from the view: format characters (zero-width spaces and joiners, bidi controls,
# soft hyphen, tag characters) and combining marks, by category, and fillers that render
# as nothing.
_DROPPED = ("Cf", "Mn", "Me", "Co")
# Control characters (other than the whitespace the patterns allow) and blank symbols.
_INVISIBLE = {
    chr(c) for c in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0))
}
_INVISIBLE |= set("\u115f\u1160\u17b4\u17b5\u2800\u3164\uffa0")
# What the fast path leaves to `_fold`: anything but printable ASCII and its whitespace.
_NOT_PLAIN = re.compile(r"[^\t\n\r\x20-\x7e]")
# Letters and brackets that look like the ASCII ones in our delimiters and markers.
_CONFUSABLES = str.maketrans(
    {
        **dict.fromkeys("\u2039\u3008\u27e8\u02c2\u1438\u276e\u29fc\u2329", "<"),
        **dict.fromkeys("\u276c\u2770\u02f1\u2264\u227a", "<"),
        **dict.fromkeys("\u203a\u3009\u27e9\u02c3\u1433\u276f\u29fd\u232a", ">"),
        **dict.fromkeys("\u276d\u2771\u02f2\u2265\u227b", ">"),
        # Small capitals (they have no compatibility decomposition) and Latin alpha
        **dict(
            zip(
                "\u1d00\u0299\u1d04\u1d05\u1d07\ua730\u0262\u029c\u026a\u1d0a",
                "abcdefghij",
                strict=True,
            )
        ),
        **dict(
            zip(
                "\u1d0b\u029f\u1d0d\u0274\u1d0f\u1d18\u0280\ua731\u1d1b\u1d1c",
                "klmnoprstu",
                strict=True,
            )
        ),
        **dict(zip("\u1d20\u1d21\u028f\u1d22\u0251\u03c2", "vwyzas", strict=True)),
        **dict.fromkeys("\u2044\u2215\u2571\u29f8", "/"),
        **dict.fromkeys("\u2216\u29f5\u2572", "\\"),
        **dict.fromkeys("\u01c0\u2223\u2502", "|"),
        # Cyrillic, Greek and other letters that look Latin
        **dict.fromkeys("\u0430\u03b1", "a"),
        **dict.fromkeys("\u0441\u03f2", "c"),
        **dict.fromkeys("\u0501", "d"),
        **dict.fromkeys("\u0435\u03b5", "e"),
        **dict.fromkeys("\u0261\u0581", "g"),
        **dict.fromkeys("\u04bb", "h"),
        **dict.fromkeys("\u0456\u03b9\u0131", "i"),
        **dict.fromkeys("\u0458", "j"),
        **dict.fromkeys("\u03ba", "k"),
        **dict.fromkeys("\u043e\u03bf\u0585", "o"),
        **dict.fromkeys("\u0440\u03c1", "p"),
        **dict.fromkeys("\u051b", "q"),
        **dict.fromkeys("\u0455", "s"),
        **dict.fromkeys("\u0443", "y"),
        **dict.fromkeys("\u0445\u03c7", "x"),
        **dict.fromkeys("\u051d", "w"),
        **dict.fromkeys("\u03bd", "v"),
        **dict.fromkeys("\u057d", "u"),
    }
)
_NAMED_REFERENCES = {"<": "&lt;", ">": "&gt;", "&": "&amp;"}


@cache
def _fold(char: str) -> str:
    """What one character of the original contributes to the view (possibly nothing)."""
    # Confusables before and after: some fold into something else (final sigma into sigma).
    decomposed = unicodedata.normalize("NFKD", char.translate(_CONFUSABLES)).casefold()
    kept = (
        c for c in decomposed if unicodedata.category(c) not in _DROPPED and c not in _INVISIBLE
    )
    return "".join(kept).translate(_CONFUSABLES)


def _view(text: str) -> tuple[str, list[int]]:
    """The normalised view of `text` and, for each of its characters, its original index
    (`_aligned_view` is the fast path for text whose characters each fold to one)."""
    pieces: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        folded = _fold(char)
        pieces.append(folded)
        origin.extend([index] * len(folded))
    return "".join(pieces), origin


def _aligned_view(text: str) -> str | None:
    """The view when every character folds to exactly one (index for index with `text`):
    the common case, computed without a Python loop over the text; else None."""
    special = set(_NOT_PLAIN.findall(text))
    if not special:
        return text.lower()
    folds = {ord(c): _fold(c) for c in special}
    if any(len(fold) != 1 for fold in folds.values()):
        return None
    view = text.translate(folds).lower()
    return view if len(view) == len(text) else None


def _reference(char: str) -> str:
    return _NAMED_REFERENCES.get(char, f"&#{ord(char)};")


def _is_marker(token: str) -> bool:
    """A token that is markup rather than a word: plain words and whitespace runs (which
    some tokenizers add as tokens) stay readable as they are."""
    folded = _view(token)[0]
    return len(folded) >= 3 and any(not (c.isalnum() or c.isspace()) for c in folded)


class Neutraliser:
    """Finds special tokens, turn markers and delimiter look-alikes, and defuses them."""

    def __init__(self, special_tokens: Iterable[str] = ()) -> None:
        markers = {_view(t)[0] for t in (*TURN_MARKERS, *special_tokens) if _is_marker(t)}
        alternatives = [re.escape(m) for m in sorted(markers, key=len, reverse=True)]
        # Every alternative starts with one of a few characters: find those with a plain
        # scan, then try the alternatives only there (overlapping starts included).
        firsts = re.escape("".join(sorted({m[0] for m in markers} | {"<"})))
        self._candidates = re.compile(f"[{firsts}]")
        self._marker = re.compile("|".join([*alternatives, _PIPE_TAG, _DELIMITER]))

    def _found(self, view: str) -> Iterator[int]:
        for candidate in self._candidates.finditer(view):
            if self._marker.match(view, candidate.start()):
                yield candidate.start()

    def starts(self, text: str) -> list[int]:
        """Indices in `text` of the first character of each occurrence, ascending."""
        aligned = _aligned_view(text)
        if aligned is not None:
            return list(self._found(aligned))
        view, origin = _view(text)
        return sorted({origin[start] for start in self._found(view)})

    def __call__(self, text: str) -> str:
        starts = self.starts(text)
        if not starts:
            return text
        pieces = []
        previous = 0
        for start in starts:
            pieces += [text[previous:start], _reference(text[start])]
            previous = start + 1
        pieces.append(text[previous:])
        return "".join(pieces)


@lru_cache(maxsize=16)
def neutraliser(special_tokens: frozenset[str] = frozenset()) -> Neutraliser:
    """The neutraliser for one tokenizer's special tokens (built once per set)."""
    return Neutraliser(special_tokens)
