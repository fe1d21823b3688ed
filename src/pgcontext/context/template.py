"""The system message template: `$instructions`, `$passages` (required) and `$prompt`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from string import Template

from pgcontext.errors import TemplateError

PLACEHOLDERS = ("instructions", "passages", "prompt")
DEFAULT_TEMPLATE = "$instructions\n\n$passages"


@dataclass(frozen=True)
class SystemTemplate:
    """A checked `string.Template` ("$$" is a literal dollar sign)."""

    text: str
    origin: str = "template"  # named in errors: the file, or "template"

    def __post_init__(self) -> None:
        template = Template(self.text)
        if not template.is_valid():
            raise TemplateError(
                f"{self.origin}: a '$' must start $instructions, $passages or $prompt "
                "(write $$ for a dollar sign)"
            )
        names = template.get_identifiers()
        unknown = sorted(set(names) - set(PLACEHOLDERS))
        if unknown:
            raise TemplateError(
                f"{self.origin}: unknown placeholder(s) {', '.join('$' + n for n in unknown)}; "
                f"use {', '.join('$' + p for p in PLACEHOLDERS)}"
            )
        if "passages" not in names:
            raise TemplateError(f"{self.origin}: no $passages placeholder for the passages")

    @classmethod
    def from_file(cls, path: str | Path) -> SystemTemplate:
        try:
            text = Path(path).expanduser().read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise TemplateError(f"template {str(path)!r} cannot be read: {exc}") from None
        return cls(text, origin=f"template {str(path)!r}")

    def render(self, *, instructions: str, passages: str, prompt: str) -> str:
        return Template(self.text).substitute(
            instructions=instructions, passages=passages, prompt=prompt
        )


DEFAULT = SystemTemplate(DEFAULT_TEMPLATE)
