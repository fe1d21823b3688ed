"""What an ingest run reports is what it did: a text the model fails on fails alone, and
documents written by the jobs a run waited on count as written by it."""

from __future__ import annotations

import psycopg

from pgcontext import SourceDocument, Store
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
