"""eval-answers scoring: cosine similarity whatever the embedder's scale, key-term coverage."""

from __future__ import annotations

import numpy as np
import pytest

from pgcontext.eval.answers import AnswerRecord, key_terms, score_answers
from tests.support.fake_embedder import FakeEmbedder


class ScaledEmbedder(FakeEmbedder):
    """The fake embedder's vectors times 7: not normalised, same directions."""

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        return super().embed_documents(texts) * 7.0


def test_similarity_is_cosine_even_for_unnormalised_vectors() -> None:
    records = [AnswerRecord(1, "q", "cats purr softly", "cats purr softly", None)]
    assert score_answers(records, ScaledEmbedder()).scores[0].similarity == pytest.approx(1.0)
    other = [AnswerRecord(1, "q", "cats purr softly", "tax forms due", None)]
    assert score_answers(other, ScaledEmbedder()).scores[0].similarity < 0.9


def test_key_terms_drop_stop_words_and_short_words() -> None:
    assert key_terms("The COPY command loads CSV files; it is the fastest way to do it.") == [
        "copy",
        "command",
        "loads",
        "csv",
        "files",
        "fastest",
        "way",
    ]
