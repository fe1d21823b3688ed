"""Queued work carries a version from one sequence, and no write replaces newer state with
older: a stale job (still queued, or claimed by a slow worker) and a job queued before a
prune lose; two identical ingests at once embed each text once."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from pgcontext import SourceDocument, Store
from pgcontext.db.connection import configure
from pgcontext.ingest import jobs, writer
from pgcontext.ingest.pipeline import BatchProcessor
from pgcontext.ingest.report import IngestReport, Outcome
from pgcontext.ingest.worker import WorkerOptions
from tests.support.fake_embedder import FakeEmbedder

FAST = WorkerOptions(backoff_seconds=0.01, poll_seconds=0.02, lease_seconds=5)


@contextmanager
def connect(url: str, *, autocommit: bool = True) -> Iterator[psycopg.Connection[Any]]:
    """A connection of its own, outside the store's pool, configured as the pool's are."""
    with psycopg.connect(url, autocommit=autocommit) as conn:
        configure(conn)
        yield conn


def write_folder(folder: Path, n: int, version: int) -> None:
    folder.mkdir(exist_ok=True)
    for i in range(n):
        (folder / f"note-{i:02d}.txt").write_text(
            f"Note {i} is at version {version}. It says v{version} in every chunk.\n"
        )


def stored_texts(db_url: str) -> dict[str, str]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT d.source, string_agg(c.text, ' ' ORDER BY c.position)"
            " FROM pgcontext.document d JOIN pgcontext.chunk c ON c.document_id = d.id"
            " GROUP BY d.source"
        ).fetchall()
    return {source: text for source, text in rows}


def docs(n: int, word: str) -> list[SourceDocument]:
    return [SourceDocument(f"d{i}", None, f"document {i} says {word}", {}) for i in range(n)]


def test_a_stale_queued_job_never_overwrites_a_newer_ingest(store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    write_folder(folder, 20, version=2)
    stopped = store.ingest("c", [folder], enqueue_only=True)  # as if stopped midway
    assert stopped.queued_jobs >= 1
    write_folder(folder, 20, version=3)
    newer = store.ingest("c", [folder])
    assert (newer.added, newer.problems) == (20, [])

    worked = store.worker(WorkerOptions(once=True, poll_seconds=0.02)).run()
    assert (worked.added, worked.updated, worked.superseded) == (0, 0, 20)
    texts = stored_texts(store.url)
    assert len(texts) == 20
    assert all("version 3" in text and "version 2" not in text for text in texts.values())
    again = store.ingest("c", [folder])
    assert (again.unchanged, again.updated, again.added, again.queued_jobs) == (20, 0, 0, 0)


def test_reingesting_the_stored_content_supersedes_a_queued_change(
    store: Store, db_url: str
) -> None:
    store.ingest("c", docs(3, "one"))
    store.ingest("c", docs(3, "two"), enqueue_only=True)
    back = store.ingest("c", docs(3, "one"))  # the latest word is "one" again
    assert (back.unchanged, back.updated) == (3, 0)
    store.worker(WorkerOptions(once=True, poll_seconds=0.02)).run()
    assert all(text.endswith("says one") for text in stored_texts(db_url).values())


def test_importing_vectors_supersedes_a_queued_change_too(
    store: Store, db_url: str, tmp_path: Path
) -> None:
    store.ingest("c", docs(2, "one"))
    dump = tmp_path / "dump.jsonl"
    with dump.open("wb") as out:
        store.export("c", out)
    store.drop_collection("c")
    assert store.ingest("c", [dump]).added == 2
    store.ingest("c", docs(2, "two"), enqueue_only=True)
    imported = store.ingest("c", [dump])  # what is stored, again: the latest word
    assert (imported.unchanged, imported.updated, imported.problems) == (2, 0, [])
    worked = store.worker(WorkerOptions(once=True, poll_seconds=0.02)).run()
    assert worked.superseded == 2
    assert all(text.endswith("says one") for text in stored_texts(db_url).values())


def test_a_slow_worker_that_claimed_a_stale_job_loses_to_a_newer_write(
    store: Store, db_url: str, fake_embedder: FakeEmbedder
) -> None:
    store.ingest("c", docs(4, "old"), enqueue_only=True)
    info = store.collection("c")
    processor = BatchProcessor(info, fake_embedder)
    with connect(db_url) as slow:
        (job,) = jobs.claim(slow, "slow")
        prepared = processor.prepare(slow, job.documents, job.versions)  # embedded, not yet written
        assert len(prepared.documents) == 4

        newer = store.ingest("c", docs(4, "new"))  # its own run, written and committed
        assert newer.added == 4

        def finish(outcome: Outcome) -> None:
            assert jobs.finish(slow, job.id, "slow", outcome.as_result())

        ts_oid = writer.ts_config_oid(slow, info)
        outcome = processor.write(slow, prepared, ts_oid, finish)
    assert (outcome.added, outcome.updated, outcome.superseded) == (0, 0, 4)
    assert all(text.endswith("says new") for text in stored_texts(db_url).values())


def test_a_slow_worker_blocks_the_newer_write_and_the_newer_one_still_wins(
    store: Store, db_url: str, fake_embedder: FakeEmbedder
) -> None:
    store.ingest("c", docs(2, "old"), enqueue_only=True)
    info = store.collection("c")
    processor = BatchProcessor(info, fake_embedder)
    newer: list[IngestReport] = []
    with connect(db_url, autocommit=False) as slow:
        (job,) = jobs.claim(slow, "slow")
        prepared = processor.prepare(slow, job.documents, job.versions)
        slow.commit()
        ts_oid = writer.ts_config_oid(slow, info)
        thread: threading.Thread | None = None

        def finish(_: Outcome) -> None:
            # The stale write is in, uncommitted: a newer run starts and must wait for it.
            nonlocal thread
            thread = threading.Thread(
                target=lambda: newer.append(store.ingest("c", docs(2, "new")))
            )
            thread.start()
            time.sleep(0.5)
            assert jobs.finish(slow, job.id, "slow", {})

        outcome = processor.write(slow, prepared, ts_oid, finish)
        slow.commit()
    assert thread is not None
    thread.join(30)
    assert outcome.added == 2
    assert newer and newer[0].updated == 2
    assert all(text.endswith("says new") for text in stored_texts(db_url).values())


def test_a_document_changed_between_prepare_and_write_is_prepared_again_alone(
    store: Store, db_url: str, fake_embedder: FakeEmbedder
) -> None:
    store.ingest("c", docs(2, "x"))
    store.ingest("c", docs(1, "y"), enqueue_only=True)
    # "x" is stored, but an older job carries "y": this run queues "x" anew, to win.
    latest = [*docs(1, "x"), SourceDocument("new", None, "a new document", {})]
    assert store.ingest("c", latest, enqueue_only=True).queued_jobs == 1
    info = store.collection("c")
    processor = BatchProcessor(info, fake_embedder)
    with connect(db_url) as conn:
        older, newer = jobs.claim(conn, "w", max_jobs=2)
        ts_oid = writer.ts_config_oid(conn, info)
        prepared_newer = processor.prepare(conn, newer.documents, newer.versions)
        assert [p.chunks is None for p in prepared_newer.documents] == [False, True]
        prepared_older = processor.prepare(conn, older.documents, older.versions)
        outcome = processor.write(conn, prepared_older, ts_oid, lambda _: None)
        assert outcome.updated == 1  # "y" is newer than the stored "x"

        def finish(_: Outcome) -> None:
            assert jobs.finish(conn, newer.id, "w", {})

        # d0 changed under the prepared batch: it alone is prepared again, and the batch
        # is written in the same attempt (no failure, no backoff, no attempt spent).
        outcome = processor.write(conn, prepared_newer, ts_oid, finish)
        assert (outcome.added, outcome.updated, outcome.superseded) == (1, 1, 0)
        assert outcome.chunks_written == 2
        assert jobs.finish(conn, older.id, "w", {})
        row = conn.execute(
            "SELECT status, attempts FROM pgcontext.ingest_queue WHERE id = %s", (newer.id,)
        ).fetchone()
    assert row == ("done", 1)
    assert stored_texts(db_url) == {
        "d0": "document 0 says x",
        "d1": "document 1 says x",
        "new": "a new document",
    }


def test_a_job_queued_before_a_prune_does_not_resurrect_its_document(
    store: Store, db_url: str
) -> None:
    store.ingest("c", docs(3, "one"))
    store.ingest("c", docs(3, "two"), enqueue_only=True)
    pruned = store.ingest("c", docs(1, "three"), prune=True)  # d1 and d2 are gone
    assert pruned.removed == 2
    worked = store.worker(WorkerOptions(once=True, poll_seconds=0.02)).run()
    assert worked.added == 0
    assert stored_texts(db_url) == {"d0": "document 0 says three"}
    # A newer ingest of a pruned source brings it back.
    back = store.ingest("c", docs(2, "four"))
    assert (back.added, back.updated) == (1, 1)


class GatedEmbedder(FakeEmbedder):
    """Holds every embedding call until `gate` opens, so two runs surely overlap."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.texts = 0
        self._lock = threading.Lock()

    def embed_documents(self, texts: list[str]) -> Any:
        self.gate.wait(30)
        with self._lock:
            self.texts += len(texts)
        return super().embed_documents(texts)


@pytest.fixture
def gated(store: Store) -> GatedEmbedder:
    embedder = GatedEmbedder()
    store.models.register_embedder(embedder)
    store.create_collection("c")
    return embedder


def test_two_identical_ingests_at_once_embed_everything_once(
    store: Store, db_url: str, gated: GatedEmbedder
) -> None:
    reports: list[IngestReport] = []
    start = threading.Barrier(2)

    def run() -> None:
        start.wait()
        reports.append(store.ingest("c", docs(30, "same"), worker_options=FAST))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 20
    while store.status()["queue"]["queued"] + store.status()["queue"]["running"] < 1:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.5)  # both runs have read their input and queued what they would
    gated.gate.set()
    for thread in threads:
        thread.join(60)
    assert gated.texts == 30
    assert sorted(r.added for r in reports) == [0, 30]
    assert sorted(r.unchanged for r in reports) == [0, 30]
    assert all(r.ok for r in reports)
    assert len(stored_texts(db_url)) == 30


def test_a_run_waiting_on_a_crashed_runs_job_finishes_it(
    store: Store, db_url: str, gated: GatedEmbedder
) -> None:
    gated.gate.set()
    store.ingest("c", docs(5, "same"), enqueue_only=True)  # its process then died
    with psycopg.connect(db_url, autocommit=True) as conn:
        (ghost,) = jobs.claim(conn, "ghost", lease_seconds=0.3)
    report = store.ingest("c", docs(5, "same"), worker_options=FAST)
    # This run's worker wrote them (the dead run never will report): they count as added.
    assert (report.added, report.unchanged, report.queued_jobs, report.ok) == (5, 0, 0, True)
    assert gated.texts == 5
    assert len(stored_texts(db_url)) == 5
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT status, attempts FROM pgcontext.ingest_queue WHERE id = %s", (ghost.id,)
        ).fetchone()
    assert row == ("done", 2)  # the dead run's own job, claimed again after its lease


def test_a_run_waiting_on_another_runs_failing_job_reports_the_failure(
    store: Store, gated: GatedEmbedder
) -> None:
    gated.gate.set()
    store.ingest("c", docs(2, "same"), enqueue_only=True)
    gated.fail_next = 1000
    report = store.ingest("c", docs(2, "same"), worker_options=FAST)
    assert {p.source for p in report.problems} == {"d0", "d1"}
    assert all("fake embedder failure" in p.reason for p in report.problems)


@pytest.mark.parametrize("stored", [False, True], ids=["new source", "stored source"])
@pytest.mark.parametrize("first", ["write", "delete"])
def test_a_delete_and_an_older_write_racing_on_a_new_source_end_deleted(
    store: Store, db_url: str, first: str, stored: bool
) -> None:
    """The rule in SQL alone (as trigger-fed workers will use it): work queued before a
    delete loses to it, whichever transaction takes the key first (the key's lock is its
    tombstone row for a new source, the document's row for a stored one)."""
    collection_id = store.create_collection("c").id
    if stored:
        store.ingest("c", [SourceDocument("z", None, "stored", {})])
    with psycopg.connect(db_url) as conn:
        (queued,) = writer.next_versions(conn, 1)  # the write's work was queued first
    write = (
        "SELECT outcome FROM pgcontext.write_document(%s, 'z', NULL, '{}', 'h', 1, %s)",
        (collection_id, queued),
    )
    delete = ("SELECT pgcontext.delete_documents(%s, ARRAY['z'])", (collection_id,))
    one, other = (write, delete) if first == "write" else (delete, write)
    outcomes: list[Any] = []
    with psycopg.connect(db_url) as a, psycopg.connect(db_url) as b:
        outcomes.append(a.execute(*one).fetchone())
        second = threading.Thread(
            target=lambda: (outcomes.append(b.execute(*other).fetchone()), b.commit())
        )
        second.start()
        time.sleep(0.3)
        assert second.is_alive()  # waiting for the key
        a.commit()
        second.join(10)
    written = "updated" if stored else "added"
    assert outcomes[0 if first == "write" else 1] == (
        written if first == "write" else "superseded",
    )
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM pgcontext.document").fetchone() == (0,)


def test_a_job_queued_before_versions_existed_counts_as_the_oldest(
    store: Store, db_url: str
) -> None:
    store.ingest("c", docs(1, "stored"))
    collection_id = store.collection("c").id
    legacy = {
        "documents": [
            {"source": s, "title": None, "text": f"{s} legacy", "metadata": {}}
            for s in ("d0", "new")
        ]
    }
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO pgcontext.ingest_queue (collection_id, source, payload)"
            " VALUES (%s, 'd0', %s)",
            (collection_id, Jsonb(legacy)),
        )
    worked = store.worker(WorkerOptions(once=True, poll_seconds=0.02)).run()
    assert (worked.superseded, worked.added) == (1, 1)
    assert stored_texts(db_url) == {"d0": "document 0 says stored", "new": "new legacy"}


def job_statuses(db_url: str) -> dict[int, str]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT id, status FROM pgcontext.ingest_queue").fetchall()
    return dict(rows)


def test_a_run_whose_awaited_job_fails_for_good_writes_its_own_copy(
    store: Store, db_url: str, gated: GatedEmbedder
) -> None:
    gated.gate.set()
    store.ingest("c", docs(2, "same"), enqueue_only=True)
    with psycopg.connect(db_url) as conn:
        conn.execute("UPDATE pgcontext.ingest_queue SET max_attempts = 1")
    gated.fail_next = 3  # the other run's only attempt: both documents, then each alone
    report = store.ingest("c", docs(2, "same"), worker_options=FAST)
    assert (report.added, report.ok) == (2, True)
    assert report.documents_seen == report.expected_documents == 2
    assert len(stored_texts(db_url)) == 2


@pytest.mark.parametrize("other_run", ["a run", "no run (queued before runs existed)"])
def test_a_run_waits_only_for_the_jobs_it_needs(
    store: Store, db_url: str, gated: GatedEmbedder, other_run: str
) -> None:
    gated.gate.set()
    others = [SourceDocument(f"e{i}", None, f"other {i}", {}) for i in range(3)]
    store.ingest("c", docs(3, "same") + others, enqueue_only=True, job_documents=3)
    if other_run != "a run":
        with psycopg.connect(db_url) as conn:
            conn.execute("UPDATE pgcontext.ingest_queue SET run_id = NULL")
    needed, unrelated = sorted(job_statuses(db_url))
    report = store.ingest("c", docs(3, "same"), worker_options=FAST)
    assert (report.added, report.queued_jobs, report.ok) == (3, 0, True)  # it worked the job
    assert job_statuses(db_url) == {needed: "done", unrelated: "queued"}


def test_an_enqueue_only_run_reports_the_documents_it_leaves_to_another_run(
    store: Store, gated: GatedEmbedder
) -> None:
    store.ingest("c", docs(3, "same"), enqueue_only=True)
    report = store.ingest("c", [*docs(3, "same"), *docs(4, "new")[3:]], enqueue_only=True)
    assert (report.queued_jobs, report.unchanged, report.expected_documents) == (1, 3, 4)


def tombstone_writes(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    """Rows this transaction inserted into and deleted from document_tombstone."""
    row = conn.execute(
        "SELECT n_tup_ins, n_tup_del FROM pg_stat_xact_user_tables"
        " WHERE schemaname = 'pgcontext' AND relname = 'document_tombstone'"
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def test_writing_a_stored_document_leaves_the_tombstones_alone(store: Store, db_url: str) -> None:
    store.ingest("c", docs(1, "stored"))
    collection_id = store.collection("c").id
    with psycopg.connect(db_url) as conn:
        (version,) = writer.next_versions(conn, 1)
        outcome = conn.execute(
            "SELECT outcome FROM pgcontext.write_document(%s, 'd0', NULL, '{}', 'h2', 1, %s)",
            (collection_id, version),
        ).fetchone()
        assert outcome == ("updated",)
        assert tombstone_writes(conn) == (0, 0)  # the document's own row is the lock


def tombstones(db_url: str) -> set[str]:
    with psycopg.connect(db_url) as conn:
        return {r[0] for r in conn.execute("SELECT source FROM pgcontext.document_tombstone")}


def test_tombstones_no_unfinished_job_needs_are_dropped_after_a_while(
    store: Store, db_url: str
) -> None:
    store.ingest("c", docs(3, "one"))
    store.ingest("c", docs(2, "two")[1:], enqueue_only=True)  # d1 queued, older than the prune
    store.ingest("c", docs(1, "three"), prune=True)
    assert tombstones(db_url) == {"d1", "d2"}  # just deleted: kept for a grace period
    with psycopg.connect(db_url) as conn:
        conn.execute("UPDATE pgcontext.document_tombstone SET deleted_at = now() - interval '2h'")
    store.ingest("c", docs(1, "three"))
    assert tombstones(db_url) == {"d1"}  # the queued job of d1 still needs it
    worked = store.worker(WorkerOptions(once=True, poll_seconds=0.02)).run()
    assert (worked.superseded, worked.added) == (1, 0)
    store.ingest("c", docs(1, "three"))
    assert tombstones(db_url) == set()
    assert stored_texts(db_url) == {"d0": "document 0 says three"}


def test_progress_counts_the_documents_a_newer_write_superseded(store: Store) -> None:
    store.create_collection("c")

    def inputs() -> Any:
        yield SourceDocument("d0", None, "older", {})
        yield SourceDocument("d1", None, "other", {})  # d0's job is queued by now
        store.ingest("c", [SourceDocument("d0", None, "newer", {})])

    seen: list[IngestReport] = []
    report = store.ingest("c", inputs(), job_documents=1, progress=seen.append)
    assert (report.added, report.superseded) == (1, 1)
    last = seen[-1]
    assert (last.added, last.superseded) == (1, 1)
    assert last.documents_seen == last.expected_documents == 2


def test_each_document_is_hashed_checked_and_its_metadata_serialised_once(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from psycopg.types import json as psycopg_json

    from pgcontext.ingest import changes

    hashed: list[str] = []
    checked: list[str] = []
    content_hash, check_storable = writer.content_hash, changes.check_storable

    def counting_hash(doc: SourceDocument) -> str:
        hashed.append(doc.source)
        return content_hash(doc)

    def counting_check(doc: SourceDocument) -> Any:
        checked.append(doc.source)
        return check_storable(doc)

    monkeypatch.setattr(writer, "content_hash", counting_hash)
    monkeypatch.setattr(changes, "check_storable", counting_check)  # the one place it is called
    metadata = {"k": "v"}
    serialised: list[Any] = []

    def counting_dumps(obj: Any) -> str:
        if obj == metadata:
            serialised.append(obj)
        return json.dumps(obj)

    body = " ".join(f"Sentence {i} of a long document." for i in range(200))
    documents = [SourceDocument(f"d{i}", None, body, metadata) for i in range(3)]
    psycopg_json.set_json_dumps(counting_dumps)
    try:
        report = store.ingest("c", documents)
    finally:
        psycopg_json.set_json_dumps(json.dumps)
    assert report.added == 3 and report.chunks_written > 3 * 3
    assert sorted(hashed) == sorted(checked) == ["d0", "d1", "d2"]
    assert len(serialised) <= 3


def test_a_document_left_to_another_run_that_newer_content_superseded_counts_superseded(
    store: Store, db_url: str, gated: GatedEmbedder
) -> None:
    gated.gate.set()
    store.ingest("c", docs(1, "same"), enqueue_only=True)

    def inputs() -> Any:
        yield from docs(1, "same")  # left to the other run's queued job
        yield SourceDocument("other", None, "other", {})
        store.ingest("c", docs(1, "newer"))  # then newer content wins before that job runs

    report = store.ingest("c", inputs(), job_documents=1, worker_options=FAST)
    assert (report.added, report.unchanged, report.superseded) == (1, 0, 1)
    assert stored_texts(db_url)["d0"] == "document 0 says newer"


def test_content_read_before_a_newer_ingest_completes_loses_to_it_though_queued_after(
    store: Store, db_url: str
) -> None:
    """The version is taken when a document is handed over, not when its job is queued."""

    def slow_source() -> Any:
        yield SourceDocument("a", None, "a says two", {})  # handed over (read) first
        assert store.ingest("a-c", [SourceDocument("a", None, "a says three", {})]).ok
        yield SourceDocument("b", None, "b says two", {})  # the run queues only now

    store.create_collection("a-c")
    store.ingest("a-c", [SourceDocument("a", None, "a says one", {})])
    report = store.ingest("a-c", slow_source())
    assert (report.superseded, report.added) == (1, 1)
    assert stored_texts(db_url)["a"] == "a says three"


def test_a_file_read_before_a_newer_ingest_of_it_completes_loses_to_it(
    store: Store, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI case: a.txt is read, b.html parses slowly, meanwhile a.txt changes and is
    ingested alone; the first run's job, queued after, must not bring the old text back."""
    from pgcontext.ingest import files

    folder = tmp_path / "notes"
    folder.mkdir()
    a = folder / "a.txt"
    a.write_text("a says one\n")
    (folder / "b.html").write_text("<p>b says one</p>")
    store.ingest("c", [folder])
    a.write_text("a says two\n")
    parse = files.html_to_text

    def slow_parse(html: str) -> Any:
        a.write_text("a says three\n")
        assert store.ingest("c", [a]).updated == 1
        return parse(html)

    monkeypatch.setattr(files, "html_to_text", slow_parse)
    report = store.ingest("c", [folder])
    assert report.superseded == 1
    assert stored_texts(db_url)[a.as_posix()].startswith("a says three")
