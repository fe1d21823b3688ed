"""What an ingest run reports is what it did: a text the model fails on fails alone, and
documents written by the jobs a run waited on count as written by it."""

from __future__ import annotations

import psycopg
import pytest

from pgcontext import SourceDocument, Store
from pgcontext.cli.render import print_report as _print_report
from pgcontext.ingest.report import IngestReport
from pgcontext.ingest.run import _collect_run
from pgcontext.ingest.worker import WorkerOptions
from tests.support.fake_embedder import FakeEmbedder

FAST = WorkerOptions(backoff_seconds=0.01, poll_seconds=0.02, lease_seconds=5)


def docs(n: int, word: str) -> list[SourceDocument]:
    return [SourceDocument(f"d{i}", None, f"document {i} says {word}", {}) for i in range(n)]


def stored_sources(db_url: str) -> set[str]:
    with psycopg.connect(db_url) as conn:
        return {row[0] for row in conn.execute("SELECT source FROM pgcontext.document")}


def test_a_text_the_model_fails_on_fails_alone_and_the_others_are_written(
    store: Store, db_url: str, fake_embedder: FakeEmbedder
) -> None:
    documents = docs(7, "fine")
    documents[4] = SourceDocument("bad", None, "this one is poison to the model", {})
    fake_embedder.refuse = "poison"
    report = store.ingest("c", documents, worker_options=FAST)
    assert report.added == 6
    assert [(p.source, p.reason) for p in report.problems] == [
        ("bad", "cannot embed: ValueError: fake embedder refuses 'poison'")
    ]
    assert stored_sources(db_url) == {f"d{i}" for i in range(7) if i != 4}
    assert len(fake_embedder.calls) <= 1 + 2 * 3  # the good halves, found by bisection


def test_a_model_that_fails_on_every_document_alone_fails_the_attempt(
    store: Store, db_url: str, fake_embedder: FakeEmbedder
) -> None:
    fake_embedder.fail_next = 5  # 3 documents: all, the first, the other two, each of them
    report = store.ingest("c", docs(3, "fine"), worker_options=FAST)
    assert (report.added, report.ok) == (3, True)  # the second attempt wrote them all
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT attempts FROM pgcontext.ingest_queue").fetchall() == [(2,)]


def test_a_run_whose_job_failed_says_so_not_that_it_waits_for_a_worker(
    store: Store, fake_embedder: FakeEmbedder, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_embedder.fail_next = 1000
    report = store.ingest("c", docs(1, "fine"), worker_options=FAST)
    _print_report(report, as_json=False)
    out = capsys.readouterr().out
    assert "run `pgcontext worker`" not in out
    assert "1 job failed" in out and "pgcontext retry" in out


def test_jobs_left_queued_by_an_enqueue_only_run_still_point_to_the_worker(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    _print_report(store.ingest("c", docs(2, "fine"), enqueue_only=True), as_json=False)
    assert "1 jobs queued: run `pgcontext worker`" in capsys.readouterr().out


@pytest.mark.parametrize("before", ["stored older", "not stored"])
def test_documents_a_run_wrote_by_working_an_earlier_runs_job_count_as_written(
    store: Store, before: str
) -> None:
    """An interrupted run's queued jobs (or an older queued job a --prune run shares) are
    written by the next run that reads the same content: it reports them written."""
    if before == "stored older":
        store.ingest("c", docs(3, "one"))
    store.ingest("c", docs(3, "two"), enqueue_only=True)  # then the run died
    report = store.ingest("c", docs(3, "two"), prune=True, worker_options=FAST)
    written = (report.added, report.updated)
    assert written == ((0, 3) if before == "stored older" else (3, 0))
    assert report.unchanged == 0
    assert report.chunks_written == 3


def test_a_run_whose_job_another_run_worked_does_not_count_it_written_too(
    store: Store, db_url: str
) -> None:
    """Two runs at once: if the waiting run's worker writes the first run's job, only it
    reports the documents written; the first run (collecting at its end) counts them
    unchanged."""
    store.ingest("c", docs(3, "same"), enqueue_only=True)
    assert store.ingest("c", docs(3, "same"), worker_options=FAST).added == 3
    with psycopg.connect(db_url) as conn:
        (first_run,) = conn.execute("SELECT DISTINCT run_id FROM pgcontext.ingest_queue").fetchone()
        first = IngestReport("c")
        _collect_run(conn, first_run, first)
    assert (first.added, first.unchanged, first.chunks_written) == (0, 3, 0)
