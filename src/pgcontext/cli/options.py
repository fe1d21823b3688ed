"""Options several commands share, and the checks that make a bad value a usage error
(exit code 2) before any database or model work."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from pgcontext import (
    BUDGET_RANGE,
    DEFAULT_BUDGET_TOKENS,
    DEFAULT_CONTEXT_K,
    DEFAULT_EF_SEARCH,
    DEFAULT_HYBRID_EF_SEARCH,
    DEFAULT_MODE,
    MAX_EF_SEARCH,
    MAX_K,
    MODES,
    RERANK_DEPTH,
    PgContextError,
    SearchOptions,
    SystemTemplate,
    check_paths,
    check_query,
    compile_filter,
    parse_filter_json,
)
from pgcontext.cli.errors import bad_parameter

F = TypeVar("F", bound=Callable[..., Any])


def shown(*names: str, help: str, **kwargs: Any) -> Callable[[F], F]:
    """An option whose default the help shows."""
    return click.option(*names, show_default=True, help=help, **kwargs)


def seconds(flag: str, low: float, default: float, help: str) -> Callable[[F], F]:
    """A number of seconds, at most an hour, whose default the help shows."""
    return shown(flag, type=click.FloatRange(low, 3600), default=default, help=help)


def stacked(*options: Callable[[F], F]) -> Callable[[F], F]:
    """Several options as one decorator, in the order given."""

    def apply(func: F) -> F:
        for option in reversed(options):
            func = option(func)
        return func

    return apply


def _checked(check: Callable[[Any], Any]) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """A click callback: `check(value)`'s error becomes a usage error naming the option."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is None:
            return None
        try:
            check(value)
        except PgContextError as exc:
            raise bad_parameter(exc) from exc
        return value

    return callback


def _parse_filter(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    try:
        parsed = parse_filter_json(value)
        compile_filter(parsed)  # validates operators, keys and values now
    except PgContextError as exc:
        raise bad_parameter(exc) from exc
    return parsed


check_query_value = _checked(check_query)  # a usage error before the model loads
check_paths_value = _checked(check_paths)

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
collection_option = click.option(
    "--collection", "-c", required=True, metavar="NAME", help="The collection to use."
)
filter_option = click.option(
    "--filter",
    "filter_",
    metavar="JSON",
    callback=_parse_filter,
    help='Metadata filter, e.g. \'{"year": {"$gte": 2020}, "lang": {"$in": ["en"]}}\'.',
)
rerank_flag = click.option(
    "--rerank",
    is_flag=True,
    help=f"Re-order the top {RERANK_DEPTH} with the cross-encoder "
    "(needs pgcontext[rerank]; ~2 s on two cores).",
)


def k_option(default: int, help: str) -> Callable[[F], F]:
    return shown("-k", type=click.IntRange(1, MAX_K), default=default, help=help)


# --mode, --mmr, --rerank and --ef-search: one SearchOptions (see `searching`).
search_options = stacked(
    shown(
        "--mode",
        type=click.Choice(MODES),
        default=DEFAULT_MODE,
        help="hybrid: dense and BM25 fused by RRF; dense: HNSW over embeddings; "
        "keyword: BM25 only (no model).",
    ),
    click.option(
        "--mmr",
        type=click.FloatRange(0.0, 1.0),
        metavar="LAMBDA",
        help="Diversify with maximal marginal relevance: 1 = relevance only, "
        "0 = diversity only; 0.5 is a common start.",
    ),
    rerank_flag,
    click.option(
        "--ef-search",
        type=click.IntRange(1, MAX_EF_SEARCH),
        help="HNSW search breadth of the dense search (hybrid's dense side too): higher is "
        f"more exact and slower [default: {DEFAULT_EF_SEARCH} dense, "
        f"{DEFAULT_HYBRID_EF_SEARCH} hybrid].",
    ),
)

# How the context is built: budget, k, filter, search, tokenizer, template, order.
context_options = stacked(
    collection_option,
    shown(
        "--budget",
        type=click.IntRange(*BUDGET_RANGE),
        default=DEFAULT_BUDGET_TOKENS,
        help="Most tokens for the whole messages (system + user), as the chat model counts them.",
    ),
    k_option(DEFAULT_CONTEXT_K, "Chunks to retrieve before fitting the budget."),
    filter_option,
    search_options,
    click.option(
        "--tokenizer",
        metavar="FOLDER|NAME",
        help="The chat model's tokenizer: a local folder, or a hub name with "
        "PGCONTEXT_ALLOW_HUB=1 [default: the bundled SmolLM2's].",
    ),
    click.option(
        "--template",
        "template_file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="System message template file: $passages (required), $instructions, $prompt.",
    ),
    click.option("--template-text", metavar="TEXT", help="The same template, given as a string."),
    shown(
        "--order",
        type=click.Choice(["relevance", "document"]),
        default="relevance",
        help="Passages best first, or grouped by document in document order.",
    ),
)


def context_arguments(
    budget: int,
    k: int,
    filter_: dict[str, Any] | None,
    tokenizer: str | None,
    template_file: Path | None,
    template_text: str | None,
    order: str,
    mode: str,
    mmr: float | None,
    rerank: bool,
    ef_search: int | None,
) -> dict[str, Any]:
    """Store.context's keyword arguments from the options `context_options` adds."""
    if template_file is not None and template_text is not None:
        raise click.UsageError("give --template or --template-text, not both")
    template = (
        SystemTemplate.from_file(template_file)
        if template_file is not None
        else SystemTemplate(template_text)
        if template_text is not None
        else None
    )
    return {
        "budget_tokens": budget,
        "k": k,
        "filter": filter_,
        "tokenizer": tokenizer,
        "template": template,
        "order": order,
        "options": searching(mode, mmr, rerank, ef_search),
    }


def searching(mode: str, mmr: float | None, rerank: bool, ef_search: int | None) -> SearchOptions:
    """The SearchOptions that `search_options` describe."""
    return SearchOptions(mode=mode, mmr_lambda=mmr, rerank=rerank, ef_search=ef_search)
