"""IR metrics: hand-worked values, the trec_eval conventions, and percentile against numpy."""

from __future__ import annotations

import math
import random

import numpy
import pytest

from pgcontext.eval.metrics import evaluate, mrr_at_k, ndcg_at_k, percentile, recall_at_k

# Worked example.
#   ranked = [d3, d1, d7, d2]        qrels = {d1: 2, d2: 1, d9: 1}
#   rank r:     1   2   3   4        discount = log2(r + 1): 1, 1.58496, 2, 2.32193
#   gain:       0   2   0   1        (d3, d7 unjudged -> 0; d9 is never retrieved)
#
#   DCG@3  = 2 / log2(3)                         = 1.261860
#   DCG@10 = 2 / log2(3) + 1 / log2(5)           = 1.261860 + 0.430677 = 1.692536
#   ideal gains, all relevant sorted desc: [2, 1, 1]
#   IDCG@3 = IDCG@10 = 2/1 + 1/log2(3) + 1/log2(4) = 2 + 0.630930 + 0.5 = 3.130930
#   nDCG@3  = 1.261860 / 3.130930 = 0.403030
#   nDCG@10 = 1.692536 / 3.130930 = 0.540586
#   recall@3 = 1/3 (d1 of d1, d2, d9); recall@10 = 2/3
#   MRR@10 = 1/2 (first relevant, d1, at rank 2); MRR@1 = 0
RANKED = ["d3", "d1", "d7", "d2"]
QRELS = {"d1": 2, "d2": 1, "d9": 1}


def test_ndcg_hand_worked() -> None:
    assert ndcg_at_k(RANKED, QRELS, 3) == pytest.approx(0.403030, abs=1e-6)
    assert ndcg_at_k(RANKED, QRELS, 10) == pytest.approx(0.540586, abs=1e-6)


def test_ndcg_ideal_is_cut_at_k() -> None:
    # k=1: DCG@1 = 0 (d3 unjudged); with d1 first, DCG@1 = 2 = IDCG@1.
    assert ndcg_at_k(RANKED, QRELS, 1) == 0.0
    assert ndcg_at_k(["d1", "d3"], QRELS, 1) == 1.0


def test_ndcg_graded_relevance_rewards_the_better_order() -> None:
    qrels = {"a": 3, "b": 1}
    assert ndcg_at_k(["a", "b"], qrels, 10) == pytest.approx(1.0)
    # [b, a]: (1 + 3/log2(3)) / (3 + 1/log2(3)) = 2.892789 / 3.630930
    assert ndcg_at_k(["b", "a"], qrels, 10) == pytest.approx(2.892789 / 3.630930, abs=1e-6)


def test_non_positive_grades_are_not_relevant() -> None:
    qrels = {"a": 0, "b": -1, "c": 1}
    assert ndcg_at_k(["a", "b", "c"], qrels, 10) == pytest.approx(1 / math.log2(4))
    assert recall_at_k(["a", "b"], qrels, 10) == 0.0
    assert mrr_at_k(["a", "b", "c"], qrels, 10) == pytest.approx(1 / 3)


@pytest.mark.parametrize("qrels", [{}, {"a": 0}])
def test_query_without_relevant_documents_scores_zero(qrels: dict[str, int]) -> None:
    assert ndcg_at_k(["a"], qrels, 10) == 0.0
    assert recall_at_k(["a"], qrels, 10) == 0.0
    assert mrr_at_k(["a"], qrels, 10) == 0.0


def test_empty_ranking_scores_zero() -> None:
    assert ndcg_at_k([], QRELS, 10) == 0.0
    assert recall_at_k([], QRELS, 10) == 0.0
    assert mrr_at_k([], QRELS, 10) == 0.0


def test_duplicates_count_once_at_their_first_position() -> None:
    qrels = {"d1": 1, "d2": 2}
    ranked = ["d1", "d1", "d2"]
    # Deduplicated: [d1, d2] -> (1 + 2/log2(3)) / (2 + 1/log2(3)) = 2.261860 / 2.630930.
    # Counting d1 twice would give (1 + 1/log2(3)) / 2.630930 = 0.62 instead.
    assert ndcg_at_k(ranked, qrels, 2) == pytest.approx(2.261860 / 2.630930, abs=1e-6)
    assert recall_at_k(ranked, qrels, 2) == 1.0
    assert mrr_at_k(["x", "x", "d1"], qrels, 2) == 0.5


def test_recall_hand_worked() -> None:
    assert recall_at_k(RANKED, QRELS, 1) == 0.0
    assert recall_at_k(RANKED, QRELS, 3) == pytest.approx(1 / 3)
    assert recall_at_k(RANKED, QRELS, 10) == pytest.approx(2 / 3)


def test_mrr_hand_worked() -> None:
    assert mrr_at_k(RANKED, QRELS, 10) == 0.5
    assert mrr_at_k(RANKED, QRELS, 2) == 0.5
    assert mrr_at_k(RANKED, QRELS, 1) == 0.0


@pytest.mark.parametrize("metric", [ndcg_at_k, recall_at_k, mrr_at_k])
def test_k_must_be_positive(metric: object) -> None:
    with pytest.raises(ValueError, match="k must be at least 1"):
        metric(RANKED, QRELS, 0)  # type: ignore[operator]


def test_evaluate_averages_over_queries_with_qrels() -> None:
    run = {
        "q1": RANKED,
        "q2": ["x", "y", "z"],
        "q3": ["a"],  # no qrels: ignored
    }
    qrels = {
        "q1": QRELS,
        "q2": {"z": 1},
        "q4": {"a": 1},  # not in the run: counts as 0
    }
    scores = evaluate(run, qrels, ks=(10, 2))
    # q2: the only relevant document at rank 3 -> nDCG = 1/log2(4) = 0.5, MRR = 1/3, recall 1.
    assert scores == pytest.approx(
        {
            "ndcg@2": (ndcg_at_k(RANKED, QRELS, 2) + 0 + 0) / 3,
            "ndcg@10": (0.540586 + 0.5 + 0) / 3,
            "recall@2": (1 / 3 + 0 + 0) / 3,
            "recall@10": (2 / 3 + 1 + 0) / 3,
            "mrr@2": (0.5 + 0 + 0) / 3,
            "mrr@10": (0.5 + 1 / 3 + 0) / 3,
        },
        abs=1e-6,
    )


def test_evaluate_default_keys() -> None:
    scores = evaluate({"q": ["a"]}, {"q": {"a": 1}})
    assert set(scores) >= {"ndcg@10", "recall@10", "recall@100", "mrr@10"}
    assert all(value == 1.0 for value in scores.values())


def test_evaluate_rejects_empty_input() -> None:
    with pytest.raises(ValueError, match="qrels is empty"):
        evaluate({"q": ["a"]}, {})
    with pytest.raises(ValueError, match="ks is empty"):
        evaluate({"q": ["a"]}, {"q": {"a": 1}}, ks=())


@pytest.mark.parametrize("q", [0, 5, 25, 50, 90, 95, 99, 99.9, 100])
@pytest.mark.parametrize("size", [1, 2, 7, 100])
def test_percentile_matches_numpy(q: float, size: int) -> None:
    rng = random.Random(size)
    values = [rng.uniform(-10, 1000) for _ in range(size)]
    assert percentile(values, q) == pytest.approx(float(numpy.percentile(values, q)))


def test_percentile_small_cases() -> None:
    assert percentile([3.0, 1.0, 2.0, 4.0], 50) == 2.5
    assert percentile([10.0], 99) == 10.0


def test_percentile_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="empty"):
        percentile([], 50)
    with pytest.raises(ValueError, match="between 0 and 100"):
        percentile([1.0], 101)
