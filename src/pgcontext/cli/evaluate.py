"""`eval` (retrieval on a BEIR dataset) and `eval-answers` (answers against references)."""

from __future__ import annotations

from pathlib import Path

import click

from pgcontext import (
    DEFAULT_MODE,
    EVAL_CONFIGURATIONS,
    MODES,
    PgContextError,
    Reranker,
    Store,
    read_answer_records,
    run_eval,
    score_answers,
)
from pgcontext.cli.errors import reported, user_message
from pgcontext.cli.options import json_option, rerank_flag, shown
from pgcontext.cli.progress import IngestProgress
from pgcontext.cli.render import print_answer_scores, print_eval, print_eval_table, print_json
from pgcontext.cli.session import open_store


@click.command("eval")
@click.argument("dataset_dir", type=click.Path(path_type=Path))
@click.option(
    "--collection",
    "-c",
    metavar="NAME",
    help="Collection to search [default: eval-<dataset name>].",
)
@shown("--split", default="test", help="qrels/<split>.tsv to score.")
@shown(
    "--mode",
    type=click.Choice(MODES),
    default=DEFAULT_MODE,  # the same as `search`'s
    help="dense: HNSW over embeddings; keyword: BM25 in SQL; hybrid: both, fused by RRF.",
)
@rerank_flag
@click.option(
    "--all",
    "all_modes",
    is_flag=True,
    help="Run dense, keyword, hybrid and hybrid + rerank (when installed); print one table.",
)
@json_option
def eval_(
    dataset_dir: Path,
    collection: str | None,
    split: str,
    mode: str,
    rerank: bool,
    all_modes: bool,
    as_json: bool,
) -> None:
    """Score retrieval on a BEIR dataset: nDCG@10, Recall@10/100, MRR@10, latency.

    DATASET_DIR holds corpus.jsonl, queries.jsonl and qrels/<split>.tsv. The corpus is
    ingested first when the collection is missing or was built from another corpus.
    """
    ctx = click.get_current_context()
    if all_modes and (
        ctx.get_parameter_source("mode") is not click.core.ParameterSource.DEFAULT or rerank
    ):
        raise click.UsageError("--all runs every mode: leave out --mode and --rerank")
    progress = IngestProgress()
    with open_store() as store:
        reranker = (
            _optional_reranker(store) if all_modes else store.models.reranker() if rerank else None
        )
        configurations = (
            [(m, r) for m, r in EVAL_CONFIGURATIONS if reranker is not None or not r]
            if all_modes
            else [(mode, rerank)]
        )
        try:
            results = [
                run_eval(
                    store,
                    dataset_dir,
                    collection=collection,
                    split=split,
                    progress=progress,
                    mode=m,
                    reranker=reranker if r else None,
                )
                for m, r in configurations
            ]
        finally:
            progress.close()
    if as_json:
        print_json([r.as_json() for r in results] if all_modes else results[0].as_json())
    elif all_modes:
        print_eval_table(results)
    else:
        print_eval(results[0])


def _optional_reranker(store: Store) -> Reranker | None:
    """The cross-encoder, or None (with a note) when the rerank extra is not installed."""
    try:
        return store.models.reranker()
    except PgContextError as exc:
        click.echo(f"note: no rerank row: {user_message(exc)}", err=True)
        return None


@click.command("eval-answers")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", metavar="MODEL", help="Embedding model [default: PGCONTEXT_MODEL].")
@json_option
def eval_answers(file: Path, model: str | None, as_json: bool) -> None:
    """Score answers against references: a rough signal, not a verdict.

    FILE is JSONL of {"question", "answer", "reference"}, optionally with "passages"
    (strings) or "cited_passages" (as `ask --json` writes them). Reports the embedding
    similarity of answer and reference, and the share of the reference's key terms found
    in the passages. Similarity rewards the right topic even when a fact is wrong and
    cannot see a negation; coverage shows whether the evidence was there, not whether the
    answer used it.
    """
    with reported():
        records = read_answer_records(file)  # a bad file fails before the database starts
    with open_store() as store:
        report = score_answers(records, store.embedder(model))
    data = report.as_json()
    if as_json:
        print_json(data)
    else:
        print_answer_scores(data)
