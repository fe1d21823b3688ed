"""Tests of pgcontext.ingest.parsing: HTML to text, Markdown titles, strict decoding."""

from __future__ import annotations

import codecs

import pytest

from pgcontext.errors import SourceError
from pgcontext.ingest.parsing import decode_text, html_to_text, markdown_title


class TestHtmlToText:
    def test_title_comes_from_title_element(self) -> None:
        title, _ = html_to_text("<html><head><title> The   Title </title></head><h1>H</h1>")
        assert title == "The Title"

    def test_title_falls_back_to_first_h1(self) -> None:
        title, _ = html_to_text("<p>intro</p><h1>First <b>one</b></h1><h1>Second</h1>")
        assert title == "First one"

    def test_no_title(self) -> None:
        assert html_to_text("<p>just text</p>") == (None, "just text")

    def test_drops_script_style_nav_and_head(self) -> None:
        html = (
            "<html><head><meta charset=utf-8><style>p {color: red}</style></head>"
            "<body><nav><a href=/>Home</a></nav><script>var x = '<p>';</script>"
            "<p>Visible</p></body></html>"
        )
        assert html_to_text(html) == (None, "Visible")

    def test_unclosed_head_ends_at_body(self) -> None:
        _, text = html_to_text("<head><title>T</title><body><p>Body text</p>")
        assert text == "Body text"

    def test_blocks_become_paragraphs(self) -> None:
        html = "<div>one</div><p>two</p><ul><li>three</li><li>four</li></ul>five<br>six"
        assert html_to_text(html)[1] == "one\n\ntwo\n\nthree\n\nfour\n\nfive\n\nsix"

    def test_headings_become_markdown_lines(self) -> None:
        html = "<h1>Top</h1><p>a</p><h2>Sub\n  title</h2><p>b</p><h6>Deep</h6>"
        assert html_to_text(html)[1] == "# Top\n\na\n\n## Sub title\n\nb\n\n###### Deep"

    def test_whitespace_collapses_outside_pre(self) -> None:
        html = "<p>  many \n\t spaces   <em>and</em>\n inline  </p>"
        assert html_to_text(html)[1] == "many spaces and inline"

    def test_pre_keeps_whitespace_in_a_code_fence(self) -> None:
        html = "<p>Code:</p><pre>\ndef f():\n    return  1\n\n# done\n</pre><p>after</p>"
        expected = "Code:\n\n```\ndef f():\n    return  1\n\n# done\n```\n\nafter"
        assert html_to_text(html)[1] == expected

    def test_br_inside_pre_is_a_line_break(self) -> None:
        assert html_to_text("<pre>a<br>  b</pre>")[1] == "```\na\n  b\n```"

    def test_entities_are_decoded_and_nbsp_kept(self) -> None:
        assert html_to_text("<p>a &amp; b&nbsp;c &lt;d&gt;</p>")[1] == "a & b\u00a0c <d>"

    def test_table_cells_are_separated(self) -> None:
        html = "<table><tr><th>k</th><th>v</th></tr><tr><td>a</td><td>1</td></tr></table>"
        assert html_to_text(html)[1] == "k v\n\na 1"

    def test_empty_document(self) -> None:
        assert html_to_text("<html><body>  </body></html>") == (None, "")


class TestMarkdownTitle:
    def test_first_atx_heading(self) -> None:
        assert markdown_title("intro\n\n## Not this\n\n# The Title #\n\n# Later") == "The Title"

    def test_front_matter_title_wins(self) -> None:
        text = '---\nauthor: me\ntitle: "Front Matter"\n---\n# Heading\n'
        assert markdown_title(text) == "Front Matter"

    def test_front_matter_without_title(self) -> None:
        assert markdown_title("---\nauthor: me\n---\n\n# Heading\n") == "Heading"

    def test_heading_inside_code_fence_is_ignored(self) -> None:
        text = "```bash\n# install it\npip install x\n```\n\n# Real\n"
        assert markdown_title(text) == "Real"

    @pytest.mark.parametrize("text", ["", "no heading", "#hashtag", "    # indented code"])
    def test_no_title(self, text: str) -> None:
        assert markdown_title(text) is None


class TestDecodeText:
    def test_plain_utf8(self) -> None:
        assert decode_text("héllo".encode(), "f.txt") == "héllo"

    def test_bom_is_stripped(self) -> None:
        assert decode_text(codecs.BOM_UTF8 + b"text", "f.txt") == "text"

    def test_line_ends_are_normalised(self) -> None:
        assert decode_text(b"a\r\nb\rc\n", "f.txt") == "a\nb\nc\n"

    def test_invalid_utf8_names_byte_and_offset(self) -> None:
        with pytest.raises(SourceError) as caught:
            decode_text(b"abc\xe9def", "latin.txt")
        assert caught.value.source == "latin.txt"
        assert caught.value.reason == (
            "not valid UTF-8 (byte 0xe9 at offset 3); convert the file to UTF-8"
        )

    def test_offset_counts_the_bom(self) -> None:
        with pytest.raises(SourceError, match="byte 0xff at offset 4"):
            decode_text(codecs.BOM_UTF8 + b"a\xff", "f.txt")

    def test_nul_bytes_mean_binary_even_if_also_invalid(self) -> None:
        with pytest.raises(SourceError) as caught:
            decode_text(b"\x89PNG\r\n\x1a\n\x00\x00\xff", "image.png")
        assert caught.value.reason == "looks like a binary file (contains NUL bytes)"

    def test_utf16_is_named(self) -> None:
        with pytest.raises(SourceError, match="UTF-16"):
            decode_text("text".encode("utf-16"), "wide.txt")
