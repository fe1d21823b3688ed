"""System templates, passage order, output formats and whole-message token counting."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgcontext.context.assemble import DEFAULT_INSTRUCTIONS, assemble_context
from pgcontext.context.template import SystemTemplate
from pgcontext.errors import ConfigError, TemplateError
from tests.unit.test_context import DOC_A, DOC_B, count_words, hit, rendered


def two_documents() -> list:
    return [
        hit(DOC_A, 120, 200, chunk_id=3, position=2, document_id=1, score=0.9),
        hit(DOC_B, 0, 60, chunk_id=7, position=0, document_id=2, score=0.8, source="b.md"),
        hit(DOC_A, 0, 60, chunk_id=1, position=0, document_id=1, score=0.7),
    ]


def test_a_template_shapes_the_system_message() -> None:
    template = SystemTemplate("Question: $prompt\n$instructions\nCost: $$5\n$passages\nEnd.")
    result = assemble_context(
        "what is vacuum?",
        two_documents(),
        budget_tokens=1000,
        count_tokens=count_words,
        template=template,
    )
    system = result.messages[0]["content"]
    assert system.startswith(f"Question: what is vacuum?\n{DEFAULT_INSTRUCTIONS}\nCost: $5\n")
    assert system.endswith("</passages>\nEnd.")
    assert len(rendered(result)) == 3
    assert result.tokens == sum(count_words(m["content"]) for m in result.messages)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Use these: $instructions", r"no \$passages placeholder"),
        ("$passages and $context", r"unknown placeholder\(s\) \$context"),
        ("$passages costs $5", "write \\$\\$ for a dollar sign"),
    ],
)
def test_bad_templates_are_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        SystemTemplate(text)


def test_template_files(tmp_path: Path) -> None:
    path = tmp_path / "system.txt"
    path.write_text("Be terse.\n$passages", encoding="utf-8")
    assert SystemTemplate.from_file(path).text == "Be terse.\n$passages"
    with pytest.raises(TemplateError, match=r"missing\.txt"):
        SystemTemplate.from_file(tmp_path / "missing.txt")
    path.write_text("$passages $nope", encoding="utf-8")
    with pytest.raises(TemplateError, match=r"system\.txt.*nope"):
        SystemTemplate.from_file(path)


def test_document_order_groups_each_documents_passages_in_position_order() -> None:
    by_relevance = assemble_context(
        "q", two_documents(), budget_tokens=1000, count_tokens=count_words
    )
    by_document = assemble_context(
        "q", two_documents(), budget_tokens=1000, count_tokens=count_words, order="document"
    )
    assert [(c.source, c.span[0]) for c in by_relevance.citations] == [
        ("a.md", 120),
        ("b.md", 0),
        ("a.md", 0),
    ]
    assert [(c.source, c.span[0]) for c in by_document.citations] == [
        ("a.md", 0),
        ("a.md", 120),
        ("b.md", 0),
    ]
    assert [c.n for c in by_document.citations] == [1, 2, 3]
    assert [n for n, _ in rendered(by_document)] == [1, 2, 3]
    with pytest.raises(ConfigError, match="passage order 'random'"):
        assemble_context("q", [], budget_tokens=100, count_tokens=count_words, order="random")


def test_whole_message_counting_includes_per_message_overhead() -> None:
    def with_overhead(messages) -> int:  # type: ignore[no-untyped-def]
        return sum(count_words(m["content"]) + 7 for m in messages)

    for budget in (85, 110, 150, 400):
        result = assemble_context(
            "q", two_documents(), budget_tokens=budget, count_messages=with_overhead
        )
        assert result.tokens == with_overhead(result.messages) <= budget


def test_text_and_markdown_formats() -> None:
    result = assemble_context(
        "what is vacuum?", two_documents(), budget_tokens=1000, count_tokens=count_words
    )
    text = result.as_text()
    assert text == result.messages[0]["content"] + "\n\n" + "what is vacuum?"
    markdown = result.as_markdown()
    assert markdown.startswith("### system\n\n```text\n")
    assert "### user\n\n```text\nwhat is vacuum?\n```" in markdown
    assert "1. A (`a.md`, characters 120-200)" in markdown
    fenced = assemble_context(
        "show ```code```", [], budget_tokens=1000, count_tokens=count_words
    ).as_markdown()
    assert "````text\nshow ```code```\n````" in fenced  # a longer fence than the content's
