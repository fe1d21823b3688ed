"""Information-retrieval metrics, computed the way trec_eval / pytrec_eval (and so BEIR) do.

``ranked`` is a list of document ids, best first; ``qrels`` maps document ids to graded
relevance. A document is relevant when its grade is above 0. A document id that appears more
than once in ``ranked`` counts only at its first position, so a retriever cannot score twice
with the same document.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence

__all__ = ["evaluate", "mrr_at_k", "ndcg_at_k", "percentile", "recall_at_k"]

Metric = Callable[[Sequence[str], Mapping[str, int], int], float]


def ndcg_at_k(ranked: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    """Normalised discounted cumulative gain at ``k``; 0.0 when no document is relevant.

    Gain is the grade itself (linear, as in trec_eval's ``ndcg_cut``), the discount at rank r
    (1-based) is ``log2(r + 1)``, and the ideal ranking sorts all relevant grades descending.
    """
    _check_k(k)
    ideal = sorted((rel for rel in qrels.values() if rel > 0), reverse=True)[:k]
    if not ideal:
        return 0.0
    gains = [max(qrels.get(doc, 0), 0) for doc in _top_k(ranked, k)]
    return _dcg(gains) / _dcg(ideal)


def recall_at_k(ranked: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    """Share of the relevant documents found in the top ``k``; 0.0 when none is relevant."""
    _check_k(k)
    relevant = _relevant(qrels)
    if not relevant:
        return 0.0
    return len(relevant.intersection(_top_k(ranked, k))) / len(relevant)


def mrr_at_k(ranked: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    """Reciprocal rank of the first relevant document within the top ``k``, else 0.0."""
    _check_k(k)
    relevant = _relevant(qrels)
    for rank, doc in enumerate(_top_k(ranked, k), start=1):
        if doc in relevant:
            return 1.0 / rank
    return 0.0


_METRICS: dict[str, Metric] = {"ndcg": ndcg_at_k, "recall": recall_at_k, "mrr": mrr_at_k}


def evaluate(
    run: Mapping[str, Sequence[str]],
    qrels: Mapping[str, Mapping[str, int]],
    *,
    ks: Iterable[int] = (10, 100),
) -> dict[str, float]:
    """Mean of every metric at every ``k`` over the queries in ``qrels``.

    Keys look like ``"ndcg@10"``, ``"recall@100"``, ``"mrr@10"``. Queries of the run without
    qrels are ignored; queries with qrels but missing from the run score 0 (so a retriever
    cannot improve its score by skipping hard queries).
    """
    if not qrels:
        raise ValueError("qrels is empty: there is no query to evaluate")
    ks = sorted(set(ks))
    if not ks:
        raise ValueError("ks is empty: give at least one cutoff such as (10,)")
    totals = {f"{name}@{k}": 0.0 for name in _METRICS for k in ks}
    for query_id, judged in qrels.items():
        ranked = run.get(query_id, ())
        for name, metric in _METRICS.items():
            for k in ks:
                totals[f"{name}@{k}"] += metric(ranked, judged, k)
    return {key: total / len(qrels) for key, total in totals.items()}


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation, like ``numpy.percentile``."""
    if not values:
        raise ValueError("percentile of an empty sequence")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be between 0 and 100, got {q}")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _top_k(ranked: Sequence[str], k: int) -> list[str]:
    """The first ``k`` distinct ids of ``ranked``, each at its first position."""
    # dict keeps insertion order, so this drops later duplicates and keeps the ranking.
    return list(dict.fromkeys(ranked))[:k]


def _relevant(qrels: Mapping[str, int]) -> set[str]:
    return {doc for doc, rel in qrels.items() if rel > 0}


def _dcg(gains: Sequence[int]) -> float:
    return sum(gain / math.log2(rank + 1) for rank, gain in enumerate(gains, start=1))


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
