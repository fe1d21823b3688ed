"""What a context assembly returns: the messages, their citations and their token count,
with the JSON, text and Markdown shapes the CLI prints."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pgcontext.context.neutralise import neutraliser
from pgcontext.context.passages import Passage

__all__ = ["Citation", "ContextResult"]


@dataclass(frozen=True)
class Citation:
    """What passage `[n]` of the context refers to: a character span of a document."""

    n: int
    source: str
    title: str | None
    span: tuple[int, int]
    chunk_ids: tuple[int, ...]
    score: float
    trimmed: bool = False

    @classmethod
    def of(cls, p: Passage) -> Citation:
        """The citation of an included passage."""
        span = (p.char_start, p.char_end)
        return cls(p.n, p.source, p.title, span, p.chunk_ids, p.score, p.trimmed)

    def as_json(self) -> dict[str, Any]:
        """The JSON shape of a citation (`document` repeats `source`, as in `Hit.as_json`)."""
        start, end = self.span
        return {
            "n": self.n,
            "document": self.source,
            "title": self.title,
            "source": self.source,
            "span": [start, end],
            "chunk_ids": list(self.chunk_ids),
            "score": round(self.score, 6),
            "trimmed": self.trimmed,
        }


@dataclass(frozen=True)
class ContextResult:
    """The chat messages to send, the citations they contain and their exact token count."""

    messages: list[dict[str, str]]
    citations: list[Citation]
    tokens: int
    tokenizer: str | None = None  # whose tokens `tokens` counts
    passages: list[Passage] = field(default_factory=list)  # as included, citation n = n

    def as_json(self) -> dict[str, Any]:
        """The JSON shape of the assembled context."""
        return {
            "messages": [dict(message) for message in self.messages],
            "citations": [citation.as_json() for citation in self.citations],
            "tokens": self.tokens,
            "tokenizer": self.tokenizer,
        }

    def as_text(self) -> str:
        """System then user content, for a completion endpoint or a paste."""
        return "\n\n".join(message["content"] for message in self.messages)

    def as_markdown(self) -> str:
        """Each message under a heading (its content fenced), then the sources."""
        parts = []
        for message in self.messages:
            content = message["content"]
            fence = "`" * max(3, _longest_backtick_run(content) + 1)
            parts.append(f"### {message['role']}\n\n{fence}text\n{content}\n{fence}")
        # Titles and sources are untrusted too, whoever reads this next.
        shown = neutraliser()
        sources = [
            f"{c.n}. {shown(c.title or c.source)} (`{shown(c.source)}`, "
            f"characters {c.span[0]}-{c.span[1]}"
            f"{', trimmed' if c.trimmed else ''})"
            for c in self.citations
        ]
        parts.append("### sources\n\n" + ("\n".join(sources) or "(none)"))
        return "\n\n".join(parts) + "\n"


def _longest_backtick_run(text: str) -> int:
    return max((len(run) for run in re.findall(r"`+", text)), default=0)
