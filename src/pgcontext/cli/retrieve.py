"""`search`, `context` and `ask`: the collection's best chunks, as hits, as chat messages,
or as the answer a chat model gives from them."""

from __future__ import annotations

from typing import Any

import click

from pgcontext import DEFAULT_K, DEFAULT_MAX_TOKENS, MAX_ANSWER_TOKENS, LlmError
from pgcontext.cli.errors import user_message
from pgcontext.cli.options import (
    check_query_value,
    collection_option,
    context_arguments,
    context_options,
    filter_option,
    json_option,
    k_option,
    search_options,
    searching,
    shown,
)
from pgcontext.cli.render import (
    print_context,
    print_hits,
    print_json,
    print_messages,
    print_sources,
)
from pgcontext.cli.session import open_store


@click.command()
@click.argument("query", callback=check_query_value)
@collection_option
@k_option(DEFAULT_K, "How many chunks.")
@filter_option
@search_options
@json_option
def search(query: str, collection: str, k: int, filter_: Any, as_json: bool, **search: Any) -> None:
    """Find the chunks that best match QUERY (hybrid dense + BM25 by default).

    The query is embedded with the collection's own model. Scores depend on the mode:
    cosine similarity (dense), BM25 (keyword), fused reciprocal rank (hybrid), or the
    reciprocal rank fusion of the cross-encoder's order with the first stage's (--rerank).
    """
    with open_store() as store:
        options = searching(**search)
        hits = store.search(query, collection=collection, k=k, filter=filter_, options=options)
    if as_json:
        print_json([hit.as_json() for hit in hits])
    else:
        print_hits(hits)


@click.command()
@click.argument("prompt", callback=check_query_value)
@context_options
@shown(
    "--format",
    "format_",
    type=click.Choice(["messages", "text", "markdown"]),
    default="messages",
    help="messages: the OpenAI-style chat messages as JSON; text: the contents only; "
    "markdown: headed sections and the sources.",
)
@json_option
def context(prompt: str, collection: str, format_: str, as_json: bool, **options: Any) -> None:
    """Build the LLM input for PROMPT: a system message of cited passages, then the prompt.

    --json prints {"messages", "citations", "tokens", "tokenizer"} (OpenAI-style chat
    messages and the citations as data).
    """
    with open_store() as store:
        result = store.context(prompt, collection=collection, **context_arguments(**options))
    if as_json:
        print_json(result.as_json())
    else:
        print_context(result, format_)


@click.command()
@click.argument("prompt", callback=check_query_value)
@context_options
@click.option(
    "--local", is_flag=True, help="Answer with the bundled SmolLM2-135M (pgcontext[local])."
)
@shown(
    "--max-tokens",
    type=click.IntRange(1, MAX_ANSWER_TOKENS),
    default=DEFAULT_MAX_TOKENS,
    help="Most tokens in the answer.",
)
@json_option
def ask(
    prompt: str, collection: str, local: bool, max_tokens: int, as_json: bool, **options: Any
) -> None:
    """Answer PROMPT from the collection: the context goes to a chat model, the answer
    streams back, followed by the sources it cited.

    The model is the OpenAI-compatible endpoint in PGCONTEXT_LLM_URL (with
    PGCONTEXT_LLM_MODEL and PGCONTEXT_LLM_API_KEY or PGCONTEXT_LLM_API_KEY_FILE), or with
    --local the small bundled model. With neither, the messages are printed instead.
    """
    with open_store() as store:
        arguments = context_arguments(**options)
        try:
            stream = store.ask_stream(
                prompt, collection=collection, local=local, max_tokens=max_tokens, **arguments
            )
        except LlmError as exc:
            if local:
                raise
            # The store refuses before any request when no endpoint is set: show the input.
            click.echo(f"note: {user_message(exc)}; printing the messages instead", err=True)
            result = store.context(prompt, collection=collection, **arguments)
            if as_json:
                print_json(result.as_json())
            else:
                print_messages(result)
            return
        for piece in stream:
            if not as_json:
                click.echo(piece, nl=False)
        answer = stream.answer
    if as_json:
        print_json(answer.as_json())
    else:
        print_sources(answer)
