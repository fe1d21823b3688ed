"""Ingest benchmark: end-to-end `pgcontext ingest` against the raw model on the same chunks,
and importing precomputed embeddings against a bare binary COPY of the same rows.

    python benchmarks/ingest.py                       # PostgreSQL docs and SciFact
    python benchmarks/ingest.py --corpus FILE.jsonl --limit 500

Runs on a throwaway embedded PostgreSQL (or PGCONTEXT_DATABASE_URL's server, in new
collections) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import psycopg
from common import DATA, Database, settings_in
from psycopg.types.json import Jsonb

from pgcontext import Store
from pgcontext.catalog import CollectionInfo
from pgcontext.ingest import writer

CORPORA = [DATA / "postgresql-doc-15" / "corpus.jsonl", DATA / "scifact" / "corpus.jsonl"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, action="append", help="JSONL corpus (repeatable)")
    parser.add_argument("--limit", type=int, help="Only the first N records of each corpus.")
    args = parser.parse_args()
    corpora = args.corpus or [c for c in CORPORA if c.exists()]
    if not corpora:
        sys.exit(f"no corpus found; pass --corpus (looked in {DATA})")

    with tempfile.TemporaryDirectory() as tmp, Database(Path(tmp)) as url:
        settings = settings_in(Path(tmp) / "home")
        with Store.open(url, settings=settings, upgrade=True) as store:
            store.embedder()  # load the model before any clock starts
            rows = [_bench(store, url, corpus, args.limit, Path(tmp)) for corpus in corpora]
    _print(rows)


def _bench(store: Store, url: str, corpus: Path, limit: int | None, tmp: Path) -> dict[str, Any]:
    name = f"bench-{corpus.parent.name}"[:63]
    source = corpus
    if limit:
        source = tmp / f"{corpus.parent.name}-{limit}.jsonl"
        with corpus.open() as src:
            source.write_text("".join(itertools.islice(src, limit)))
    print(f"{corpus.parent.name}: ingest end to end ...", file=sys.stderr)
    with _PeakMemory() as memory:
        report = store.ingest(name, [source])
    e2e_rate = report.chunks_embedded / report.seconds

    texts = _chunk_texts(url, name)
    embedder = store.embedder()
    print(f"{corpus.parent.name}: raw model.encode on {len(texts)} chunks ...", file=sys.stderr)
    started = time.perf_counter()
    embedder.embed_documents(texts)
    raw_rate = len(texts) / (time.perf_counter() - started)

    dump = tmp / f"{name}.export.jsonl"
    with dump.open("wb") as out:
        exported = store.export(name, out)
    print(f"{corpus.parent.name}: import {exported} precomputed rows ...", file=sys.stderr)
    imported = store.ingest(f"{name}-import", [dump])
    import_rate = imported.chunks_written / imported.seconds
    copy_rate = _bare_copy_rate(store, url, dump, f"{name}-copy")
    return {
        "corpus": corpus.parent.name,
        "documents": report.added,
        "chunks": report.chunks_written,
        "ingest_s": report.seconds,
        "e2e": e2e_rate,
        "raw": raw_rate,
        "import": import_rate,
        "copy": copy_rate,
        "peak_mib": memory.peak / 2**20,
    }


class _PeakMemory:
    """The largest resident set of this process while the block runs (sampled, 10 Hz)."""

    def __init__(self) -> None:
        self.peak = 0
        self._done = threading.Event()
        self._process = psutil.Process()

    def __enter__(self) -> _PeakMemory:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, self._process.memory_info().rss)
            if self._done.wait(0.1):
                return


def _chunk_texts(url: str, collection: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT c.text FROM pgcontext.chunk c JOIN pgcontext.collection k"
            " ON k.id = c.collection_id WHERE k.name = %s ORDER BY c.id",
            (collection,),
        ).fetchall()
    return [row[0] for row in rows]


def _bare_copy_rate(store: Store, url: str, dump: Path, name: str) -> float:
    """The same rows by a bare binary COPY into a fresh collection (with its HNSW index)."""
    info: CollectionInfo = store.create_collection(name)
    records = [json.loads(line) for line in dump.open()]
    with psycopg.connect(url, autocommit=True) as conn:
        from pgvector.psycopg import register_vector

        register_vector(conn)
        doc_ids: dict[str, int] = {}
        for record in records:  # documents first, outside the clock
            if record["document"] not in doc_ids:
                row = conn.execute(
                    "INSERT INTO pgcontext.document (collection_id, source, content_hash,"
                    " char_count) VALUES (%s, %s, '', 0) RETURNING id",
                    (info.id, record["document"]),
                ).fetchone()
                assert row is not None
                doc_ids[record["document"]] = row[0]
        ts_oid = writer.ts_config_oid(conn, info)
        rows = [
            (
                info.id,
                doc_ids[r["document"]],
                r["position"],
                r["text"],
                "",
                r["token_count"],
                r["span"][0],
                r["span"][1],
                Jsonb(r["metadata"]),
                ts_oid,
                np.asarray(r["embedding"], dtype=np.float32),
            )
            for r in records
        ]
        started = time.perf_counter()
        with conn.transaction(), conn.cursor() as cur, cur.copy(writer.COPY_CHUNKS) as copy:
            copy.set_types(writer.COPY_TYPES)
            for row in rows:
                copy.write_row(row)
        return len(rows) / (time.perf_counter() - started)


def _print(rows: list[dict[str, Any]]) -> None:
    out = io.StringIO()
    out.write(
        "| corpus | documents | chunks | ingest s | end-to-end chunks/s | raw encode chunks/s"
        " | ratio | import rows/s | bare COPY rows/s | ratio | worker peak RSS MiB |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    for r in rows:
        out.write(
            f"| {r['corpus']} | {r['documents']} | {r['chunks']} | {r['ingest_s']:.1f} "
            f"| {r['e2e']:.1f} | {r['raw']:.1f} | **{r['e2e'] / r['raw']:.2f}** "
            f"| {r['import']:.0f} | {r['copy']:.0f} | **{r['import'] / r['copy']:.2f}** "
            f"| {r['peak_mib']:.0f} |\n"
        )
    print(out.getvalue())


if __name__ == "__main__":
    main()
