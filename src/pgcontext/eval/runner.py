"""`pgcontext eval`: ingest a BEIR corpus once, run its test queries, score the rankings."""

from __future__ import annotations

import functools
import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pgcontext.errors import DatasetError
from pgcontext.eval.beir import BeirDataset, load_beir
from pgcontext.eval.metrics import evaluate, percentile
from pgcontext.ingest.report import IngestReport, Progress
from pgcontext.ingest.sources import JsonlFields, iter_documents
from pgcontext.retrieve.hybrid import Fusion
from pgcontext.retrieve.options import DEFAULT_MODE, MODES, RERANK_DEPTH, SearchOptions
from pgcontext.retrieve.rerank import Reranker, apply_rerank

if TYPE_CHECKING:
    from pgcontext.store import Store

# Documents rank by their best chunk: fetch enough chunks to fill 100 distinct documents.
CHUNKS_PER_QUERY = 300
DOCUMENTS_PER_QUERY = 100
# Every configuration `eval --all` compares: (mode, rerank).
ALL_CONFIGURATIONS = (("dense", False), ("keyword", False), ("hybrid", False), ("hybrid", True))


@dataclass
class EvalResult:
    dataset: str
    collection: str
    mode: str
    queries: int
    metrics: dict[str, float]
    latency_ms: dict[str, float]
    search_latency_ms: dict[str, float]
    ingest: IngestReport | None = None
    rerank: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "collection": self.collection,
            "mode": self.mode,
            "rerank": self.rerank,
            "queries": self.queries,
            "metrics": {key: round(value, 5) for key, value in self.metrics.items()},
            "latency_ms": self.latency_ms,
            "search_latency_ms": self.search_latency_ms,
            "ingest": None if self.ingest is None else self.ingest.as_json(),
        }


def default_collection(dataset: BeirDataset) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", dataset.name).strip("-.") or "dataset"
    return f"eval-{slug}"[:63]


def corpus_fingerprint(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:32]


def run_eval(
    store: Store,
    dataset_dir: str | Path,
    *,
    collection: str | None = None,
    split: str = "test",
    progress: Progress | None = None,
    on_query: Callable[[int, int], None] | None = None,
    mode: str = DEFAULT_MODE,
    reranker: Reranker | None = None,
    rerank_fusion: str = "rrf",
) -> EvalResult:
    """Score retrieval (`mode` dense, keyword or hybrid, optionally reranked) on a BEIR
    dataset; (re-)ingests the corpus when it changed."""
    if mode not in MODES:
        raise DatasetError(f"eval mode {mode!r} is not one of {', '.join(MODES)}", parameter="mode")
    dataset = load_beir(dataset_dir, split)
    name = collection or default_collection(dataset)
    report = _ensure_corpus(store, dataset, name, progress)
    info = store.collection(name)
    embedder = store.models.collection_embedder(info) if mode != "keyword" else None
    # The first stage alone (no MMR, no rerank) on the query vector embedded in the loop:
    # 300 candidates a side (and as HNSW breadth), so 100 distinct documents can be ranked.
    options = SearchOptions(
        mode=mode, ef_search=CHUNKS_PER_QUERY, fusion=Fusion(candidates=CHUNKS_PER_QUERY)
    )
    first_stage = functools.partial(
        store.search, collection=name, k=CHUNKS_PER_QUERY, options=options
    )
    run: dict[str, list[str]] = {}
    total_ms: list[float] = []
    search_ms: list[float] = []
    for done, (query_id, text) in enumerate(dataset.queries.items(), start=1):
        started = time.perf_counter()
        vector = embedder.embed_query(text) if embedder is not None else None
        searched = time.perf_counter()
        hits = first_stage(text, vector=vector)
        if reranker is not None:
            # The cross-encoder re-orders the head; the rest keeps the first stage's order.
            head = apply_rerank(reranker, text, hits[:RERANK_DEPTH], rerank_fusion)
            hits = head + hits[RERANK_DEPTH:]
        finished = time.perf_counter()
        total_ms.append((finished - started) * 1000)
        search_ms.append((finished - searched) * 1000)
        run[query_id] = list(dict.fromkeys(hit.source for hit in hits))[:DOCUMENTS_PER_QUERY]
        if on_query:
            on_query(done, len(dataset.queries))
    return EvalResult(
        dataset=dataset.name,
        collection=name,
        mode=mode,
        rerank=reranker is not None,
        queries=len(dataset.queries),
        metrics=evaluate(run, dataset.qrels, ks=(10, 100)),
        latency_ms=_summary(total_ms),
        search_latency_ms=_summary(search_ms),
        ingest=report,
    )


def _ensure_corpus(
    store: Store, dataset: BeirDataset, name: str, progress: Progress | None
) -> IngestReport | None:
    """Ingest when the collection is missing or was built from another corpus file."""
    fingerprint = corpus_fingerprint(dataset.corpus_path)
    existing = {c.name: c for c in store.collections()}.get(name)
    if existing is not None and existing.metadata.get("eval_corpus") == fingerprint:
        return None
    if existing is not None and "eval_corpus" not in existing.metadata:
        # Re-ingesting prunes what is not in the corpus: never do that to a user's collection.
        raise DatasetError(
            f"collection {name!r} exists and was not built by `pgcontext eval`; "
            "name another collection, or leave it out",
            parameter="collection",
        )
    documents = iter_documents([dataset.corpus_path], fields=JsonlFields(id="_id"))
    report = store.ingest(name, documents, prune=True, progress=progress)
    store.set_collection_metadata(name, {"eval_corpus": fingerprint})
    return report


def _summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p95": 0.0}
    return {"p50": round(percentile(values, 50), 3), "p95": round(percentile(values, 95), 3)}
