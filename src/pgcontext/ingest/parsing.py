"""Turn raw document content (bytes, HTML, Markdown) into plain text for chunking.

Pure functions, standard library only.
"""

from __future__ import annotations

import codecs
import re
from html.parser import HTMLParser

from pgcontext.errors import SourceError

__all__ = ["decode_text", "html_to_text", "markdown_title", "normalise_newlines"]

# Content of these elements is never document text. noscript and template are
# dropped too: they hold fallback or inert markup, not what a reader sees.
_SKIPPED = frozenset({"script", "style", "nav", "head", "noscript", "template"})
_BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "caption", "dd", "details", "div", "dl",
        "dt", "figcaption", "figure", "footer", "header", "hr", "li", "main", "ol", "p",
        "section", "summary", "table", "tbody", "tfoot", "thead", "tr", "ul",
    }
)  # fmt: skip
_HEADING_LEVELS = {f"h{level}": level for level in range(1, 7)}
_CELLS = frozenset({"td", "th"})
# Only HTML's own whitespace collapses; a no-break space (&nbsp;) is kept on purpose.
_HTML_SPACE = re.compile(r"[ \t\n\r\f]+")

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.S)
_FRONT_MATTER_TITLE = re.compile(r"^title:[ \t]*(.*?)[ \t]*$", re.M)
_ATX_H1 = re.compile(r" {0,3}#[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*")
_FENCE = re.compile(r" {0,3}(?:```|~~~)")


class _TextExtractor(HTMLParser):
    """Collects paragraphs of visible text, headings rendered as Markdown ATX lines."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.paragraphs: list[str] = []
        self.title: str | None = None
        self.first_h1: str | None = None
        self._parts: list[str] = []
        self._skipped: list[str] = []  # open elements whose content is dropped
        self._pre_depth = 0
        self._heading_level = 0  # 0 when not inside h1-h6
        self._title_parts: list[str] | None = None  # not None while inside the first <title>

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title" and self.title is None:
            self._title_parts = []
        elif tag == "body":
            # </head> is optional in HTML: the body starting closes it.
            self._skipped = [name for name in self._skipped if name != "head"]
        elif tag in _SKIPPED:
            self._skipped.append(tag)
        elif not self._skipped:
            self._open_visible(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self._title_parts is not None:
            self.title = _collapse(" ".join(self._title_parts)) or None
            self._title_parts = None
        elif tag in _SKIPPED:
            self._close_skipped(tag)
        elif not self._skipped:
            self._close_visible(tag)

    def handle_data(self, data: str) -> None:
        if self._title_parts is not None:
            self._title_parts.append(data)
        elif not self._skipped:
            self._parts.append(data)

    def finish(self) -> None:
        """Flush buffered input and the last paragraph."""
        self.close()
        self._flush()

    def _open_visible(self, tag: str) -> None:
        if tag in _HEADING_LEVELS:
            self._flush()
            self._heading_level = _HEADING_LEVELS[tag]
        elif tag == "pre":
            if self._pre_depth == 0:
                self._flush()
            self._pre_depth += 1
        elif tag == "br":
            self._line_break()
        elif tag in _CELLS:
            self._parts.append(" ")  # keeps "a</td><td>b" from reading as "ab"
        elif tag in _BLOCKS and not self._pre_depth:
            self._flush()

    def _close_visible(self, tag: str) -> None:
        if tag in _HEADING_LEVELS:
            self._flush()
            self._heading_level = 0
        elif tag == "pre" and self._pre_depth:
            if self._pre_depth == 1:
                self._flush()
            self._pre_depth -= 1
        elif tag in _BLOCKS and not self._pre_depth:
            self._flush()

    def _close_skipped(self, tag: str) -> None:
        if tag in self._skipped:
            # Pop up to the matching open tag, which tolerates unclosed children.
            while self._skipped.pop() != tag:
                pass

    def _line_break(self) -> None:
        if self._pre_depth:
            self._parts.append("\n")
        else:
            self._flush()

    def _flush(self) -> None:
        raw = "".join(self._parts)
        self._parts = []
        if self._pre_depth:
            self._flush_pre(raw)
            return
        text = _collapse(raw)
        if not text:
            return
        if self._heading_level:
            if self._heading_level == 1 and self.first_h1 is None:
                self.first_h1 = text
            text = f"{'#' * self._heading_level} {text}"
        self.paragraphs.append(text)

    def _flush_pre(self, raw: str) -> None:
        # All whitespace is content except the newline right after <pre>. The fence tells
        # the chunker that a "# comment" line in the code is not a heading.
        code = raw.strip("\n").rstrip()
        if code.strip():
            self.paragraphs.append(f"```\n{code}\n```")


def _collapse(text: str) -> str:
    return _HTML_SPACE.sub(" ", text).strip()


def html_to_text(html: str) -> tuple[str | None, str]:
    """Return (title, text) of an HTML document.

    Paragraphs are separated by a blank line, headings become Markdown ``#`` lines and
    ``<pre>`` becomes a fenced code block, so the chunker sees the document's structure.
    The title is the ``<title>`` or, failing that, the first ``<h1>``.
    """
    parser = _TextExtractor()
    parser.feed(html)
    parser.finish()
    return parser.title or parser.first_h1, "\n\n".join(parser.paragraphs)


def markdown_title(text: str) -> str | None:
    """Title of a Markdown document: front-matter ``title:``, else the first ``# `` heading."""
    text = text.removeprefix("\ufeff")
    front = _FRONT_MATTER.match(text)
    if front:
        title = _front_matter_title(front.group(1))
        if title:
            return title
        text = text[front.end() :]
    return _first_h1(text)


def _front_matter_title(front_matter: str) -> str | None:
    match = _FRONT_MATTER_TITLE.search(front_matter)
    if not match:
        return None
    value = match.group(1)
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1].strip()
    return value or None


def _first_h1(text: str) -> str | None:
    in_fence = False
    for line in text.split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence  # a "# comment" in a code block is not a heading
        elif not in_fence:
            match = _ATX_H1.fullmatch(line)
            if match and match.group(1):
                return match.group(1)
    return None


def normalise_newlines(text: str) -> str:
    """Turn Windows (CRLF) and old Mac (CR) line ends into ``\\n``."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def decode_text(data: bytes, source: str) -> str:
    """Decode file content as strict UTF-8, dropping a BOM and normalising line ends.

    Raises SourceError naming `source` when the bytes are not UTF-8 text.
    """
    # Checked before the NUL test: UTF-16 text is full of NULs, and "binary" would mislead.
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise SourceError(source, "looks like UTF-16 or UTF-32 text; convert the file to UTF-8")
    if b"\x00" in data:
        raise SourceError(source, "looks like a binary file (contains NUL bytes)")
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        text = data[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = bom + exc.start
        reason = (
            f"not valid UTF-8 (byte 0x{data[offset]:02x} at offset {offset}); "
            "convert the file to UTF-8"
        )
        raise SourceError(source, reason) from exc
    return normalise_newlines(text)
