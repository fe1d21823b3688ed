"""Token counting, in its two meanings. Pure: no model is loaded here.

- `TokenSpans`: the spans of an *embedding* model's tokens in a text. Chunking cuts text
  with them, so that no chunk holds more tokens than the embedding model reads; every
  `Embedder` is one.
- `ChatTokenCounter`: the tokens a *chat* model reads. Context budgets are measured with
  it, over whole chat messages (a chat template's role markers included). Public as
  `pgcontext.TokenCounter`; `llm.tokenizer` loads one from a tokenizer folder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeAlias

__all__ = [
    "ChatTokenCounter",
    "ContentCounter",
    "CountMessages",
    "CountText",
    "Messages",
    "TokenCounter",
    "TokenSpans",
    "count_contents",
]

Messages: TypeAlias = Sequence[dict[str, str]]
CountText: TypeAlias = Callable[[str], int]
"""Counts the tokens of one text (such as a message's content), as the chat model will."""
CountMessages: TypeAlias = Callable[[Messages], int]
"""Counts the tokens of whole chat messages, as the chat model will read them."""


class TokenSpans(Protocol):
    """An embedding model's tokenizer, as far as chunking needs it."""

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character (start, end) of every token of `text`, special tokens excluded."""
        ...


class ChatTokenCounter(Protocol):
    """Counts tokens as one chat model reads them; `name` says which.

    A counter may also name its model's special tokens in a `special_tokens` attribute (a
    frozenset of strings): retrieved text that contains them is neutralised.
    """

    name: str

    def count(self, text: str) -> int: ...

    def count_messages(self, messages: Messages) -> int: ...


TokenCounter = ChatTokenCounter
"""The public name of `ChatTokenCounter` (`pgcontext.TokenCounter`)."""


def count_contents(count: CountText, messages: Messages) -> int:
    """The sum of the messages' content tokens: what a model without a chat template reads."""
    return sum(count(message["content"]) for message in messages)


class ContentCounter:
    """A `ChatTokenCounter` from a text counter: sums the message contents (no chat template)."""

    def __init__(
        self, name: str, count: CountText, special_tokens: frozenset[str] = frozenset()
    ) -> None:
        self.name = name
        self.count = count
        self.special_tokens = special_tokens

    def count_messages(self, messages: Messages) -> int:
        return count_contents(self.count, messages)
