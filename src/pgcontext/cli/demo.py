"""`demo`: the Python language reference ingested, searched, assembled and answered."""

from __future__ import annotations

import click

from pgcontext import BUDGET_RANGE, ModelLoadError, pydoc_topics, redact_url
from pgcontext.cli.options import check_query_value, shown
from pgcontext.cli.progress import IngestProgress
from pgcontext.cli.render import print_json, print_report, print_sources, snippet
from pgcontext.cli.session import open_store

DEMO_COLLECTION = "python-docs"
DEMO_PROMPT = "How does the with statement work?"


@click.command()
@shown("--prompt", default=DEMO_PROMPT, callback=check_query_value, help="The question to answer.")
@shown(
    "--budget",
    type=click.IntRange(*BUDGET_RANGE),
    default=1500,
    help="Token budget of the assembled messages.",
)
@click.option("--no-answer", is_flag=True, help="Skip the answer by the bundled local model.")
def demo(prompt: str, budget: int, no_answer: bool) -> None:
    """Ingest the Python language reference (shipped with CPython) and answer a question.

    Starts the embedded database, creates the collection 'python-docs' with the default
    model, ingests the pydoc topics (skipped when unchanged), prints the best passages
    for the prompt, the chat messages an LLM would receive and, when pgcontext[local] is
    installed, the bundled SmolLM2-135M's answer with the sources it cited.
    """
    topics = list(pydoc_topics())
    progress = IngestProgress()
    with open_store() as store:
        click.echo(f"database: {redact_url(store.url)}")
        try:
            report = store.ingest(DEMO_COLLECTION, topics, progress=progress)
        finally:
            progress.close()
        print_report(report, as_json=False)
        hits = store.search(query=prompt, collection=DEMO_COLLECTION, k=5)
        click.echo(f"\nTop passages for: {prompt}")
        for rank, hit in enumerate(hits, start=1):
            click.echo(f"{rank}. score {hit.score:.4f}  {hit.source}  (chunk {hit.position})")
            click.echo(f"   {snippet(hit.text)}")
        result = store.context(prompt, collection=DEMO_COLLECTION, budget_tokens=budget)
        click.echo(
            f"\nChat messages ({result.tokens} {result.tokenizer} tokens, "
            f"{len(result.citations)} passages):"
        )
        print_json(result.messages)
        if no_answer:
            return
        try:
            stream = store.ask_stream(
                prompt, collection=DEMO_COLLECTION, local=True, budget_tokens=budget, max_tokens=160
            )
        except ModelLoadError as exc:
            click.echo(f"\n(no local answer: {exc})")
            return
        click.echo("\nAnswer by the bundled SmolLM2-135M-Instruct (a tiny model, offline):")
        for piece in stream:
            click.echo(piece, nl=False)
        print_sources(stream.answer)
