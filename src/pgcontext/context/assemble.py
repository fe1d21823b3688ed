"""Passages → token-budgeted chat messages with numbered citations: the entry point.

Pure functions: no database, no model. The caller supplies the search hits and a token
counter (the chat model's tokenizer, or any approximation of it: see `pgcontext.tokens`).
The work is split by job: `passages` merges hits into passages, `render` writes the
messages, `trim` cuts the best passage to fit, `result` is what comes back.

Retrieved text is untrusted. It is delimited by `<passages>`/`<passage>` tags, look-alikes
of those tags and chat-template special tokens inside it are neutralised (`neutralise`),
and the default instructions tell the model that the delimited text is data to quote,
never instructions to follow.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import replace

from pgcontext.context.neutralise import neutraliser
from pgcontext.context.passages import Passage, merge_hits
from pgcontext.context.render import DEFAULT_INSTRUCTIONS, render_messages
from pgcontext.context.result import Citation, ContextResult
from pgcontext.context.template import DEFAULT, SystemTemplate
from pgcontext.context.trim import Fits, trim_to_fit
from pgcontext.errors import BudgetError, ConfigError
from pgcontext.limits import BUDGET_RANGE, check_int
from pgcontext.retrieve.hit import Hit
from pgcontext.tokens import CountMessages, CountText, count_contents

# Passage, Citation, ContextResult, merge_hits and DEFAULT_INSTRUCTIONS are imported from
# here too.
__all__ = [
    "DEFAULT_INSTRUCTIONS",
    "ORDERS",
    "Citation",
    "ContextResult",
    "Passage",
    "assemble_context",
    "check_order",
    "merge_hits",
]

ORDERS = ("relevance", "document")


def check_order(order: str) -> None:
    """Raise ConfigError unless `order` is one of ORDERS."""
    if order not in ORDERS:
        raise ConfigError(f"passage order {order!r} is not one of {', '.join(ORDERS)}")


def assemble_context(
    prompt: str,
    hits: Sequence[Hit],
    *,
    budget_tokens: int,
    count_tokens: CountText | None = None,
    count_messages: CountMessages | None = None,
    instructions: str | None = None,
    template: SystemTemplate | None = None,
    order: str = "relevance",
    tokenizer: str | None = None,
    special_tokens: Iterable[str] = (),
) -> ContextResult:
    """Build `[system, user]` messages holding the best passages that fit in the budget.

    Tokens are counted by `count_messages` over the whole messages (a chat template's
    role markers included), else by `count_tokens` over each content. The count never
    exceeds `budget_tokens`. The best passage always goes in, cut at a sentence (else a
    word) boundary if it does not fit whole, and marked trimmed: the most relevant text
    must not lose its place to weaker, shorter passages. The others follow best first;
    one that does not fit is skipped and later, smaller ones are still tried. With
    `order="document"` the chosen passages are then shown grouped by document, in
    document order. Raises `BudgetError` if the prompt and instructions alone do not fit.

    Passage text, titles and sources are neutralised (see `neutralise`): `special_tokens`
    names the chat tokenizer's own, added to the turn markers of common model families.
    Tokens are counted on the neutralised text; citations keep the document's spans.
    """
    check_order(order)
    # NaN would silently choose nothing. The lower bound is 1, not BUDGET_RANGE's: a direct
    # caller counting its own units (words, in the tests) may assemble tiny contexts.
    budget_tokens = check_int("budget_tokens", budget_tokens, 1, BUDGET_RANGE[1])
    if count_messages is None:
        if count_tokens is None:
            raise ValueError("assemble_context needs count_tokens or count_messages")
        count_messages = functools.partial(count_contents, count_tokens)
    count = count_messages
    header = DEFAULT_INSTRUCTIONS if instructions is None else instructions
    system_template = template or DEFAULT
    # Each candidate set is rendered and counted whole: neutralise each text only once.
    neutralise = functools.cache(neutraliser(frozenset(special_tokens)))

    def total(passages: Sequence[Passage]) -> int:
        return count(render_messages(system_template, header, passages, prompt, neutralise))

    needed = total([])
    if needed > budget_tokens:
        raise BudgetError(
            f"token budget {budget_tokens} is too small: the prompt and instructions alone "
            f"need {needed} tokens; raise the budget to at least {needed} or shorten the prompt",
            parameter="budget_tokens",
        )

    def fits(passages: Sequence[Passage]) -> bool:
        # Measured on the full rendered messages, so the check is exact for any tokenizer.
        return total(passages) <= budget_tokens

    chosen = _select(merge_hits(hits), fits)
    if order == "document":
        chosen = _in_document_order(chosen)
    messages = render_messages(system_template, header, chosen, prompt, neutralise)
    return ContextResult(
        messages=messages,
        citations=[Citation.of(p) for p in chosen],
        tokens=count(messages),
        tokenizer=tokenizer,
        passages=list(chosen),
    )


def _select(candidates: Sequence[Passage], fits: Fits) -> list[Passage]:
    """Greedily add passages, best first, numbered in the order they are included."""
    chosen: list[Passage] = []
    for rank, candidate in enumerate(candidates):
        trial = [*chosen, replace(candidate, n=len(chosen) + 1)]
        if fits(trial):
            chosen = trial
        elif rank == 0:
            trimmed = trim_to_fit(replace(candidate, n=1), fits)
            chosen = [trimmed] if trimmed is not None else []
    return chosen


def _in_document_order(passages: Sequence[Passage]) -> list[Passage]:
    """Documents in order of their best passage; each document's passages by position."""
    first: dict[int, int] = {}
    for passage in passages:
        first.setdefault(passage.document_id, passage.n)
    ordered = sorted(passages, key=lambda p: (first[p.document_id], p.char_start))
    return [replace(p, n=n) for n, p in enumerate(ordered, start=1)]
