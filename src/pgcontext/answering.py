"""A prompt's context (retrieved passages within a token budget, as chat messages) and the
chat model's answer to it."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec

from pgcontext.arguments import check_text
from pgcontext.catalog import CollectionInfo
from pgcontext.context.assemble import ContextResult, assemble_context, check_order
from pgcontext.context.template import SystemTemplate
from pgcontext.limits import BUDGET_RANGE, MAX_ANSWER_TOKENS, check_int
from pgcontext.llm.answer import Answer, AnswerStream, ChatModel
from pgcontext.llm.tokenizer import TokenCounter
from pgcontext.models import Models
from pgcontext.retrieve.options import SearchOptions
from pgcontext.retrieve.search import Searcher, check_request

P = ParamSpec("P")


class Answering:
    """Contexts and answers over one Store's search and models."""

    def __init__(
        self, searcher: Searcher, models: Models, collection: Callable[[str], CollectionInfo]
    ) -> None:
        self._searcher = searcher
        self._models = models
        self._collection = collection

    def context(
        self,
        prompt: str,
        collection: str,
        budget_tokens: int,
        k: int,
        filter: Mapping[str, Any] | None,
        instructions: str | None,
        template: SystemTemplate | str | None,
        order: str,
        tokenizer: str | TokenCounter | None,
        options: SearchOptions | None,
    ) -> ContextResult:
        """See `Store.context`."""
        # Every argument is checked before any work: then the tokenizer, then the search.
        k, filter_path = check_request(prompt, collection, k, filter, what="prompt")
        budget_tokens = check_int("budget_tokens", budget_tokens, *BUDGET_RANGE)
        if instructions is not None:
            check_text(instructions, "instructions")
        if isinstance(template, str):
            template = SystemTemplate(template)
        if template is not None:
            check_text(template.text, template.origin)
        check_order(order)
        counter = self._models.tokenizer(tokenizer, lambda: self._collection(collection))
        search = options or SearchOptions()
        hits = self._searcher.checked(prompt, collection, k, filter_path, search)
        with self._models.lock:
            return assemble_context(
                prompt,
                hits,
                budget_tokens=budget_tokens,
                count_messages=counter.count_messages,
                instructions=instructions,
                template=template,
                order=order,
                tokenizer=counter.name,
                # Optional on a TokenCounter: a caller's own counter may not name any.
                special_tokens=getattr(counter, "special_tokens", frozenset()),
            )

    def stream(
        self,
        context: Callable[[], ContextResult],
        *,
        model: ChatModel | None,
        local: bool,
        max_tokens: int,
    ) -> AnswerStream:
        """The answer to the context `context()` builds, streamed. Every argument is checked
        (a missing chat endpoint is an error) before the context; the model loads after it."""
        max_tokens = check_int("max_tokens", max_tokens, 1, MAX_ANSWER_TOKENS)
        load_chat = self._models.chat_loader(model, local=local)
        result = context()
        return AnswerStream(load_chat(), result, max_tokens)


def answered(stream: Callable[P, AnswerStream]) -> Callable[P, Answer]:
    """`ask` made from `ask_stream`: the same parameters, the whole answer once streamed
    (one signature for both, so the two cannot drift apart)."""

    @functools.wraps(stream)
    def ask(*args: P.args, **kwargs: P.kwargs) -> Answer:
        answer = stream(*args, **kwargs)
        for _ in answer:
            pass
        return answer.answer

    ask.__name__ = ask.__qualname__ = "ask"
    ask.__doc__ = "The chat model's answer to `prompt` over the collection, with its citations."
    return ask
