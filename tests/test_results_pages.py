"""The results pages keep the fixed format of ``docs/results/README.md``: a verdict line last, in
its exact form, and every figure, file and page they or the README link to present."""

from __future__ import annotations

from pathlib import Path
import re

import pytest


ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
PAGES = sorted(p for p in RESULTS.glob("*.md") if p.name != "README.md")
VERDICT = re.compile(r"Verdict: (reproduced|not reproduced|within noise) — \S.*")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def local_links(page: Path) -> list[Path]:
    """The relative targets of the page's Markdown links and images, resolved from its folder."""
    return [page.parent / target for target in LINK.findall(page.read_text())
            if "://" not in target]


def test_there_are_pages() -> None:
    assert {"structured_lstm.md", "lr_drop_sst2.md"} <= {p.name for p in PAGES}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_a_page_asks_its_question_and_ends_with_a_verdict_in_the_fixed_form(page: Path) -> None:
    lines = page.read_text().rstrip("\n").splitlines()
    assert lines[0].startswith("# "), lines[0]
    # The benchmarks page collects many questions: its title names the machine, its
    # "**Question.**" paragraph the question; each study's page is titled by its question.
    assert lines[0].endswith("?") or "**Question.**" in page.read_text(), lines[0]
    assert VERDICT.fullmatch(lines[-1]), f"{page.name}: last line {lines[-1][:80]!r}"
    assert sum(line.startswith("Verdict:") for line in lines) == 1


@pytest.mark.parametrize("page", [*PAGES, ROOT / "README.md", ROOT / "docs" / "guide.md"],
                         ids=lambda p: p.name)
def test_every_linked_file_exists(page: Path) -> None:
    missing = [str(target.relative_to(ROOT)) for target in local_links(page)
               if not target.resolve().exists()]
    assert not missing, f"{page.name} links to missing files: {missing}"


def test_the_readme_results_table_links_every_page() -> None:
    linked = {target.resolve() for target in local_links(ROOT / "README.md")}
    assert {page.resolve() for page in PAGES if page.name != "benchmarks.md"} <= linked
