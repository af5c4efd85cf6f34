"""The results pages keep the fixed format of ``docs/results/README.md``: a verdict line last, in
its exact form, computed by ``dropout-lab verdict`` from the evidence the page ships, and every
figure, file and page they or the README link to present."""

from __future__ import annotations

from pathlib import Path
import re

import pytest


ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
PAGES = sorted(p for p in RESULTS.glob("*.md") if p.name != "README.md")
STUDY_PAGES = [p for p in PAGES if p.name != "benchmarks.md"]
VERDICT = re.compile(r"Verdict: (reproduced|not reproduced|within noise) — \S.*")
MARKER = re.compile(r"^<!-- verdict: (\S+) -->\n", re.MULTILINE)
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


def derivation_problem(page: Path, text: str) -> str | None:
    """Why ``text`` (a page's Markdown) does not end with what its evidence gives, or None."""
    from framework.reporting.verdicts import derive

    found = MARKER.findall(text)
    if len(found) != 1:
        return f"{page.name}: {len(found)} marker lines '<!-- verdict: FOLDER -->' (need one)"
    marker = MARKER.search(text)
    assert marker is not None
    expected = derive(page.parent / marker[1])
    written = text[marker.end():].lstrip("\n")
    if written != expected:
        return (f"{page.name}: the verdict block differs from `dropout-lab verdict "
                f"{marker[1]}`; regenerate it instead of editing it")
    return None


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_a_page_ends_with_what_its_evidence_gives(page: Path) -> None:
    assert derivation_problem(page, page.read_text()) is None


def test_a_verdict_edited_by_hand_is_caught() -> None:
    page = next(p for p in STUDY_PAGES if p.name == "standout.md")
    text = page.read_text()
    for word in ("within noise", "not reproduced", "reproduced"):
        last = text.rstrip("\n").splitlines()[-1]
        if word in last:
            other = "reproduced" if word != "reproduced" else "within noise"
            edited = text.replace(last, last.replace(word, other, 1))
            break
    assert derivation_problem(page, edited) is not None
    # A number in a claim line changed by hand is caught too.
    claim_line = next(line for line in text.splitlines() if line.startswith("Claim "))
    changed = re.sub(r"\d", lambda m: str((int(m[0]) + 1) % 10), claim_line, count=1)
    assert derivation_problem(page, text.replace(claim_line, changed)) is not None


def test_the_readme_gives_each_page_its_computed_verdict() -> None:
    readme = (ROOT / "README.md").read_text()
    for page in STUDY_PAGES:
        word = VERDICT.fullmatch(page.read_text().rstrip("\n").splitlines()[-1])[1]
        row = next(line for line in readme.splitlines() if f"(docs/results/{page.name})" in line)
        assert f"[{word}](docs/results/{page.name})" in row, (page.name, word, row)
