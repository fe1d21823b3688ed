"""Query benchmark: pgvector HNSW inside pgcontext.search against exact search and faiss HNSW.

    python benchmarks/query.py                       # 100,000 passages, 500 queries
    python benchmarks/query.py --passages 20000 --ef 20,80

The passages are the sentences of SciFact, the PostgreSQL docs and Cranfield, embedded once
with the default model and cached outside the repo (--cache; ~10 min the first time on two
cores, resumable). They are imported into a fresh collection through pgcontext's own import
path, then each query runs through `pgcontext.search` at several ef_search values. Recall@k
is measured against exact (brute-force) search; faiss HNSW with the same graph parameters
(m=16, ef_construction=64) runs in the same process at matching recall for comparison.
Latency is the client's round trip per query; "bare SQL" is the plain ORDER BY ... LIMIT k
on the same index, without pgcontext.search's checks. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import platformdirs
import psycopg
from common import DATA, Database, settings_in
from pgvector.psycopg import register_vector
from psycopg import sql

from pgcontext import Store
from pgcontext.embed.base import Embedder
from pgcontext.ingest.sources import PrecomputedChunk, SourceDocument

CORPORA = ["scifact", "postgresql-doc-15", "cranfield"]
QUERY_SETS = ["scifact", "cranfield"]
SHARD = 10_000
COLLECTION = "bench-query"
# A fine grid, so faiss can be matched to each pgvector recall closely.
FAISS_EF = [10, 12, 16, 20, 24, 32, 40, 48, 64, 80, 96, 128, 160, 200, 256, 320, 400, 512, 640]
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(])")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=100_000, help="Corpus size (≤107k).")
    parser.add_argument("--queries", type=int, default=500, help="Number of queries.")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--ef", default="10,20,40,80,160,320", help="ef_search values to try.")
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(platformdirs.user_cache_dir("pgcontext")) / "bench",
        help="Where the embedded passages are kept between runs.",
    )
    args = parser.parse_args()
    ef_values = [int(v) for v in args.ef.split(",")]
    passages = _passages(args.passages)
    queries = _queries(args.queries)
    if len(passages) < args.passages:
        sys.exit(f"only {len(passages)} passages in {DATA}; ask for fewer with --passages")

    with tempfile.TemporaryDirectory() as tmp, Database(Path(tmp)) as url:
        with Store.open(url, settings=settings_in(Path(tmp) / "home"), upgrade=True) as store:
            embedder = store.embedder()
            vectors = _cached(args.cache, "passages", passages, embedder, embedder.embed_documents)
            query_vectors = _cached(
                args.cache, "queries", queries, embedder, _query_encoder(embedder)
            )
            load_s = _load(store, passages, vectors)
        exact = _exact_top_k(vectors, query_vectors, args.k)
        rows = [_pgvector_row(url, query_vectors, exact, args.k, ef) for ef in ef_values]
    faiss_rows = _faiss_rows(vectors, query_vectors, exact, args.k, sorted({*ef_values, *FAISS_EF}))
    _print(rows, faiss_rows, ef_values, len(passages), len(queries), args.k, load_s)


def _passages(limit: int) -> list[str]:
    """Sentences of at least 30 characters, corpus by corpus, in file order."""
    out: list[str] = []
    for name in CORPORA:
        path = DATA / name / "corpus.jsonl"
        if not path.exists():
            continue
        with path.open() as lines:
            for line in lines:
                record = json.loads(line)
                for paragraph in re.split(r"\n\s*\n", record["text"]):
                    for sentence in _SENTENCE_END.split(" ".join(paragraph.split())):
                        if len(sentence) >= 30:
                            out.append(sentence)
                            if len(out) == limit:
                                return out
    return out


def _queries(limit: int) -> list[str]:
    """Every n-th query of the query sets, so each set is represented."""
    texts: list[str] = []
    for name in QUERY_SETS:
        path = DATA / name / "queries.jsonl"
        if path.exists():
            texts += [json.loads(line)["text"] for line in path.open()]
    step = max(1, len(texts) // limit)
    return texts[::step][:limit]


def _query_encoder(embedder: Embedder) -> Callable[[list[str]], np.ndarray]:
    return lambda texts: np.vstack([embedder.embed_query(t) for t in texts])


def _cached(
    cache: Path,
    kind: str,
    texts: list[str],
    embedder: Embedder,
    encode: Callable[[list[str]], np.ndarray],
) -> np.ndarray:
    """The texts' vectors, embedded in shards saved as they finish (a rerun resumes)."""
    key = hashlib.sha256()
    key.update(f"{embedder.spec.name}@{embedder.spec.revision}\n{kind}\n".encode())
    for text in texts:
        key.update(text.encode() + b"\0")
    folder = cache / f"{kind}-{key.hexdigest()[:16]}"
    folder.mkdir(parents=True, exist_ok=True)
    shards = []
    started = time.perf_counter()
    for n, start in enumerate(range(0, len(texts), SHARD)):
        path = folder / f"{n:04d}.npy"
        if not path.exists():
            part = encode(texts[start : start + SHARD])
            np.save(path.with_suffix(".tmp.npy"), part)
            path.with_suffix(".tmp.npy").rename(path)  # never a half-written shard
            done = min(start + SHARD, len(texts))
            rate = done / (time.perf_counter() - started)
            print(f"{kind}: {done}/{len(texts)} embedded ({rate:.0f}/s)", file=sys.stderr)
        shards.append(np.load(path))
    return np.vstack(shards).astype(np.float32)


def _load(store: Store, passages: list[str], vectors: np.ndarray) -> float:
    """Import the passages with their vectors into a fresh collection; returns seconds."""
    print(f"importing {len(passages)} passages ...", file=sys.stderr)
    store.drop_collection(COLLECTION)
    report = store.ingest(COLLECTION, _documents(passages, vectors))
    if report.chunks_written != len(passages):
        sys.exit(f"import wrote {report.chunks_written} of {len(passages)} passages")
    return report.seconds


def _documents(passages: list[str], vectors: np.ndarray) -> Iterator[SourceDocument]:
    for i, (text, vector) in enumerate(zip(passages, vectors, strict=True)):
        chunk = PrecomputedChunk(0, text, 0, len(text), vector.tolist())
        yield SourceDocument(f"p{i}", None, text, {}, (chunk,))


def _exact_top_k(vectors: np.ndarray, queries: np.ndarray, k: int) -> list[set[int]]:
    """Brute-force cosine top k (the vectors are normalised, so a dot product)."""
    scores = queries @ vectors.T
    top = np.argpartition(-scores, k, axis=1)[:, :k]
    return [set(row.tolist()) for row in top]


def _pgvector_row(
    url: str, queries: np.ndarray, exact: list[set[int]], k: int, ef: int
) -> dict[str, Any]:
    """pgcontext.search as callers use it, and the bare ORDER BY ... LIMIT it wraps."""
    with psycopg.connect(url, autocommit=True) as conn:
        register_vector(conn)
        info = conn.execute(
            "SELECT c.id, m.dimensions FROM pgcontext.collection c"
            " JOIN pgcontext.embedding_model m ON m.id = c.model_id WHERE c.name = %s",
            (COLLECTION,),
        ).fetchone()
        assert info is not None
        bare = sql.SQL(
            "SELECT id FROM pgcontext.chunk WHERE collection_id = %s"
            " ORDER BY embedding::vector({dims}) <=> %s::vector({dims}) LIMIT %s"
        ).format(dims=sql.Literal(info[1]))
        function = "SELECT source FROM pgcontext.search(%s, %s, %s, NULL, %s)"
        conn.execute("SELECT set_config('hnsw.ef_search', %s, false)", (str(ef),))
        for vector in queries[:50]:  # warm the index into shared buffers
            conn.execute(function, (COLLECTION, vector, k, ef)).fetchall()
        latencies, bare_latencies, recalls = [], [], []
        for vector, truth in zip(queries, exact, strict=True):
            started = time.perf_counter()
            rows = conn.execute(function, (COLLECTION, vector, k, ef)).fetchall()
            latencies.append(time.perf_counter() - started)
            found = {int(source[1:]) for (source,) in rows}
            recalls.append(len(found & truth) / k)
            started = time.perf_counter()
            conn.execute(bare, (info[0], vector, k)).fetchall()
            bare_latencies.append(time.perf_counter() - started)
    row = _summary(ef, recalls, latencies)
    row["bare_p50"] = float(np.percentile(bare_latencies, 50)) * 1000
    return row


def _faiss_rows(
    vectors: np.ndarray, queries: np.ndarray, exact: list[set[int]], k: int, ef_values: list[int]
) -> list[dict[str, Any]]:
    try:
        import faiss  # type: ignore[import-untyped]
    except ImportError:
        print("no faiss-cpu (pip install -e .[bench]): no comparison", file=sys.stderr)
        return []
    faiss.omp_set_num_threads(1)  # one query at a time, like one database backend
    index = faiss.IndexHNSWFlat(vectors.shape[1], 16, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 64
    index.add(vectors)
    rows = []
    for ef in ef_values:
        index.hnsw.efSearch = ef
        latencies, recalls = [], []
        for vector, truth in zip(queries, exact, strict=True):
            started = time.perf_counter()
            _, ids = index.search(vector[None, :], k)
            latencies.append(time.perf_counter() - started)
            recalls.append(len(set(ids[0].tolist()) & truth) / k)
        rows.append(_summary(ef, recalls, latencies))
    return rows


def _summary(ef: int, recalls: list[float], latencies: list[float]) -> dict[str, Any]:
    ms = np.asarray(latencies) * 1000
    return {
        "ef": ef,
        "recall": float(np.mean(recalls)),
        "p50": float(np.percentile(ms, 50)),
        "p95": float(np.percentile(ms, 95)),
    }


def _matching(row: dict[str, Any], faiss_rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The fastest faiss setting whose recall is at least the pgvector row's."""
    good = [f for f in faiss_rows if f["recall"] >= row["recall"]]
    return min(good, key=lambda f: f["p50"]) if good else None


def _print(
    rows: list[dict[str, Any]],
    faiss_rows: list[dict[str, Any]],
    ef_values: list[int],
    passages: int,
    queries: int,
    k: int,
    load_s: float,
) -> None:
    out = io.StringIO()
    out.write(
        f"{passages} passages, {queries} queries, k={k}; import with HNSW index {load_s:.0f} s\n\n"
        f"| ef_search | recall@{k} | p50 ms | p95 ms | bare SQL p50 ms | faiss ef at ≥ recall "
        "| faiss recall | faiss p50 ms | faiss p95 ms | p50 ratio pgvector / faiss |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n"
    )
    for r in rows:
        f = _matching(r, faiss_rows)
        tail = (
            f"| {f['ef']} | {f['recall']:.3f} | {f['p50']:.2f} | {f['p95']:.2f} "
            f"| **{r['p50'] / f['p50']:.1f}x** |"
            if f
            else "| - | - | - | - | - |"
        )
        out.write(
            f"| {r['ef']} | {r['recall']:.3f} | {r['p50']:.2f} | {r['p95']:.2f} "
            f"| {r['bare_p50']:.2f} {tail}\n"
        )
    if faiss_rows:
        out.write("\nfaiss HNSW alone (m=16, ef_construction=64, one thread):\n\n")
        out.write("| efSearch | recall | p50 ms | p95 ms |\n|---|---|---|---|\n")
        for f in (f for f in faiss_rows if f["ef"] in ef_values):
            out.write(f"| {f['ef']} | {f['recall']:.3f} | {f['p50']:.3f} | {f['p95']:.3f} |\n")
    print(out.getvalue())


if __name__ == "__main__":
    main()
