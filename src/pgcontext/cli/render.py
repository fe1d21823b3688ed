"""What the commands print: JSON for machines, lines for people."""

from __future__ import annotations

import json
from typing import Any

import click

from pgcontext import Answer, ContextResult, EvalResult, Hit, IngestReport, SourceProblem
from pgcontext.cli.errors import with_flags


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def snippet(text: str, width: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def print_report(report: IngestReport, as_json: bool) -> None:
    if as_json:
        shown = report.as_json()
        shown["problems"] = [{"source": p.source, "reason": _reason(p)} for p in report.problems]
        print_json(shown)
        return
    click.echo(
        f"{report.collection}: {report.added} added, {report.updated} updated, "
        f"{report.unchanged} unchanged, "
        + (f"{report.superseded} superseded, " if report.superseded else "")
        + f"{report.removed} removed, {len(report.problems)} failed; "
        f"{report.chunks_written} chunks written ({report.chunks_embedded} embedded) "
        f"in {report.seconds:.1f}s"
    )
    if report.left_queued:
        click.echo(f"  {report.left_queued} jobs queued: run `pgcontext worker` to process them")
    if report.failed_jobs:
        jobs = "1 job" if report.failed_jobs == 1 else f"{report.failed_jobs} jobs"
        click.echo(
            f"  {jobs} failed for good (errors below): `pgcontext retry` queues them again,"
            " then `pgcontext worker --once` works them"
        )
    for problem in report.problems:
        click.echo(f"  failed: {problem.source}: {_reason(problem)}", err=True)


def _reason(problem: SourceProblem) -> str:
    """A problem's reason as the command line says it: the flag for an API parameter."""
    return with_flags(problem.reason, problem.parameter)


def print_hits(hits: list[Hit]) -> None:
    if not hits:
        click.echo("no results")
    for rank, hit in enumerate(hits, start=1):
        click.echo(f"{rank:>3}. {hit.score:.4f}  {hit.title or ''}  [{hit.source}]")
        click.echo(f"     {snippet(hit.text)}")


def print_context(result: ContextResult, format_: str) -> None:
    if format_ == "text":
        click.echo(result.as_text())
    elif format_ == "markdown":
        click.echo(result.as_markdown(), nl=False)
    else:
        print_json(result.messages)  # ready to send as the "messages" of a chat completion
    click.echo(
        f"{len(result.citations)} passages, {result.tokens} tokens ({result.tokenizer})", err=True
    )


def print_messages(result: ContextResult) -> None:
    for message in result.messages:
        click.echo(f"--- {message['role']} ---")
        click.echo(message["content"])
    click.echo(
        f"--- {len(result.citations)} passages, {result.tokens} tokens ({result.tokenizer}) ---"
    )


def print_sources(answer: Answer) -> None:
    click.echo("")
    cited = answer.cited
    click.echo("\nSources cited:" if cited else "\nNo passage cited; the passages given were:")
    for c in cited or answer.context.citations:
        trimmed = ", trimmed" if c.trimmed else ""
        click.echo(
            f"  [{c.n}] {c.title or c.source} ({c.source}, chars {c.span[0]}-{c.span[1]}{trimmed})"
        )


def print_status(data: dict[str, Any]) -> None:
    click.echo(f"database: {data['database']}")
    if not data["collections"]:
        click.echo("no collections yet: `pgcontext ingest PATH --collection NAME`")
    for col in data["collections"]:
        click.echo(
            f"  {col['name']}: {col['documents']} documents, {col['chunks']} chunks, "
            f"model {col['model']} ({col['dimensions']} dims)"
        )
    queue = data["queue"]
    click.echo(
        f"queue: {queue['queued']} queued, {queue['running']} running, {queue['done']} done, "
        f"{queue['failed']} failed"
    )
    for error in queue["errors"]:
        click.echo(
            f"  job {error['job']} ({error['collection']}, {error['status']} after "
            f"{error['attempts']} attempts, first document {error['source']}): {error['error']}"
        )
    if queue["failed"]:
        click.echo("  `pgcontext retry` queues failed jobs again")


def print_eval(result: EvalResult) -> None:
    click.echo(
        f"{result.dataset} ({result.queries} queries, mode {result.mode}"
        f"{' + rerank' if result.rerank else ''}, "
        f"collection {result.collection})"
    )
    for key, value in result.metrics.items():
        click.echo(f"  {key:<11} {value:.4f}")
    click.echo(
        f"  latency     p50 {result.latency_ms['p50']:.1f} ms, "
        f"p95 {result.latency_ms['p95']:.1f} ms (embed + search)"
    )


def print_eval_table(results: list[EvalResult]) -> None:
    first = results[0]
    keys = list(first.metrics)
    click.echo(f"{first.dataset} ({first.queries} queries, collection {first.collection})\n")
    click.echo("| mode | " + " | ".join(keys) + " | p50 ms | p95 ms |")
    click.echo("|---" * (len(keys) + 3) + "|")
    for r in results:
        label = r.mode + (" + rerank" if r.rerank else "")
        values = " | ".join(f"{r.metrics[key]:.4f}" for key in keys)
        click.echo(
            f"| {label} | {values} | {r.latency_ms['p50']:.1f} | {r.latency_ms['p95']:.1f} |"
        )


def print_answer_scores(data: dict[str, Any]) -> None:
    click.echo(f"{data['records']} answers, embeddings by {data['model']}")
    for score in data["scores"]:
        coverage = "-" if score["coverage"] is None else f"{score['coverage']:.2f}"
        click.echo(
            f"  line {score['line']:>4}: similarity {score['similarity']:.3f}, "
            f"key terms in passages {coverage}  {snippet(score['question'], 60)}"
        )
    mean_coverage = data["mean_coverage"]
    click.echo(
        f"mean similarity {data['mean_similarity']:.3f}, mean coverage "
        f"{'-' if mean_coverage is None else f'{mean_coverage:.3f}'}"
    )
