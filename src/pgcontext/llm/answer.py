"""`ask`: the assembled context sent to a chat model, the answer and the sources it cited."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pgcontext.context.result import Citation, ContextResult

_CITATION = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")


class ChatModel(Protocol):
    """Anything that turns chat messages into an answer, piece by piece."""

    name: str

    def stream(self, messages: Sequence[dict[str, str]], max_tokens: int) -> Iterator[str]: ...


@dataclass(frozen=True)
class Answer:
    text: str
    model: str
    context: ContextResult

    @property
    def cited(self) -> list[Citation]:
        """The context's citations that the answer refers to as [n] (or [n, m])."""
        numbers = cited_numbers(self.text)
        return [c for c in self.context.citations if c.n in numbers]

    def as_json(self) -> dict[str, Any]:
        return {
            "answer": self.text,
            "model": self.model,
            "cited": [c.n for c in self.cited],
            "cited_passages": [
                {"n": p.n, "source": p.source, "text": p.text}
                for p in self.context.passages
                if p.n in cited_numbers(self.text)
            ],
            "citations": [c.as_json() for c in self.context.citations],
            "messages": self.context.messages,
            "tokens": self.context.tokens,
            "tokenizer": self.context.tokenizer,
        }


def cited_numbers(text: str) -> set[int]:
    return {int(n) for group in _CITATION.findall(text) for n in re.split(r"\s*,\s*", group)}


class AnswerStream:
    """The answer's text pieces as they arrive; `answer` is complete once iterated."""

    def __init__(self, model: ChatModel, context: ContextResult, max_tokens: int) -> None:
        self.context = context
        self._model = model
        self._max_tokens = max_tokens
        self._pieces: list[str] = []
        self._done = False

    def __iter__(self) -> Iterator[str]:
        for piece in self._model.stream(self.context.messages, self._max_tokens):
            self._pieces.append(piece)
            yield piece
        self._done = True

    @property
    def answer(self) -> Answer:
        if not self._done:
            raise RuntimeError("the answer is complete only after the stream is read to its end")
        return Answer("".join(self._pieces), self._model.name, self.context)
