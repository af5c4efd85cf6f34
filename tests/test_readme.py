"""The README's code blocks are the project's own: the study it shows is the quickstart file."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
import difflib

from markdown_it import MarkdownIt
from markdown_it.token import Token

from tests.conftest import ROOT


README = ROOT / "README.md"


@dataclass(frozen=True)
class Snippet:
    """A fenced block (``language`` its info string) or an inline code span (``language`` "")."""

    section: str
    """The heading of the README section it is in."""
    language: str
    text: str
    line: int
    """Its first line in the README (1-based)."""


def readme_snippets(inline: bool = False) -> list[Snippet]:
    """The README's fenced code blocks in order, with its inline code spans when ``inline``."""
    tokens = MarkdownIt().parse(README.read_text())
    section = ""
    snippets = []
    for previous, token in zip([None, *tokens], tokens, strict=False):
        line = token.map[0] + 1 if token.map else 0
        if token.type == "inline" and previous is not None and previous.type == "heading_open":
            section = token.content
        elif token.type == "fence":
            snippets.append(Snippet(section, token.info.strip(), token.content, line))
        elif token.type == "inline" and inline:
            snippets.extend(Snippet(section, "", span.content, line) for span in _spans(token))
    return snippets


def _spans(token: Token) -> Iterator[Token]:
    return (child for child in token.children or [] if child.type == "code_inline")


def test_the_study_shown_is_the_quickstart_file() -> None:
    """Copied from the README, the study is the one the quickstart runs, comments included."""
    shown = [s for s in readme_snippets() if s.section == "A study" and s.language == "yaml"]
    assert len(shown) == 1, "the README's 'A study' section should show one YAML block"
    quickstart = (ROOT / "studies" / "quickstart.yaml").read_text()
    diff = "".join(difflib.unified_diff(quickstart.splitlines(keepends=True),
                                        shown[0].text.splitlines(keepends=True),
                                        "studies/quickstart.yaml", f"README.md:{shown[0].line}"))
    assert shown[0].text == quickstart, diff
