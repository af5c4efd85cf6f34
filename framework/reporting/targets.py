"""Benchmark targets judged from repeated timings: pass, fail, or not decided by the data.

A benchmark (``benchmarks/``) runs its variants in alternating rounds and prints each variant's
measurements, one per round (``label ... runs [a, b, ...]``). A target is a ratio of two variants
against a threshold, e.g. "framework loop / plain loop <= 1.03". Rounds pair the two variants
(the same round ran both, under the same load), so the ratio is taken per round and summarised
by its geometric mean with a t-interval over the rounds on the log scale. A target **passes**
when the whole 95% interval is on its side of the threshold, **fails** when the whole interval is
on the other side, and is **within noise** otherwise; a file that printed medians only gives no
interval, and its target is pending a re-run with repeated timings.

The evidence folder of the benchmarks page holds ``targets.json``: the targets, each naming the
printed output file (beside the page) and the two labels. ``dropout-lab verdict FOLDER`` reads
it with the output files and prints one line per target and the page's verdict: ``reproduced``
when every target passes, ``not reproduced`` when any fails, ``within noise`` otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
import json
import math
from pathlib import Path
import re
from typing import Literal

from framework.reporting.intervals import seed_interval


FILE = "targets.json"
RUNS = re.compile(
    r"^\s*(?P<label>.+?)\s*(?::|\s+median\b).*?\b(?:runs|rounds) \[(?P<values>.*)\]\s*$")
"""A variant's line: its label, then ``:`` or ``median``, then its per-round values."""
PASS, FAIL, OPEN = "pass", "fail", "within noise"


@dataclass(frozen=True)
class Target:
    """``numerator / denominator`` (per round) against ``threshold``."""

    id: str
    text: str
    file: str
    """The benchmark's printed output, relative to the page's folder."""
    numerator: str
    denominator: str
    op: Literal["<=", ">="]
    threshold: float


@dataclass(frozen=True)
class Judged:
    target: Target
    verdict: str
    ratio: float = math.nan
    low: float = math.nan
    high: float = math.nan
    rounds: int = 0
    problem: str = ""

    def line(self) -> str:
        t = self.target
        head = f"Target {t.id}: {self.verdict} — {t.numerator} / {t.denominator} ({t.file})"
        if self.problem:
            return f"{head}: {self.problem}; target {t.op} {t.threshold:g}."
        return (f"{head}: {self.ratio:.3f}, 95% CI [{self.low:.3f}, {self.high:.3f}] over "
                f"{self.rounds} rounds (geometric mean of the per-round ratios); target "
                f"{t.op} {t.threshold:g}.")


def is_targets(folder: Path) -> bool:
    return (folder / FILE).is_file()


def load(folder: Path) -> list[Target]:
    """The targets of ``folder/targets.json``.

    Raises:
        ValueError: naming the file when it cannot be read as a list of targets.
    """
    path = folder / FILE
    try:
        return [Target(**entry) for entry in json.loads(path.read_text())]
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: not a list of targets ({exc})") from None


def runs(path: Path) -> dict[str, list[float]]:
    """Each variant's per-round measurements in a benchmark's printed output (a pair, as the
    workers benchmark prints, counts by its first number)."""
    found: dict[str, list[float]] = {}
    for line in path.read_text().splitlines():
        match = RUNS.match(line)
        if match:
            values = match["values"]
            pairs = re.findall(r"\(([^)]*)\)", values)
            items = [pair.split(",")[0] for pair in pairs] if pairs else values.split(",")
            found[match["label"].strip()] = [float(item) for item in items if item.strip()]
    return found


def judge(folder: Path, targets: list[Target]) -> list[Judged]:
    return [_judge(folder, target) for target in targets]


def _judge(folder: Path, target: Target) -> Judged:
    measured = runs(folder / target.file)
    top, bottom = measured.get(target.numerator), measured.get(target.denominator)
    if top is None or bottom is None:
        return Judged(target, OPEN, problem="medians only, no per-round timings: pending a "
                      "re-run that prints them")
    if len(top) != len(bottom) or len(top) < 2:
        return Judged(target, OPEN, problem=f"{len(top)} and {len(bottom)} rounds cannot be "
                      "paired into an interval")
    # The per-round log ratios are paired differences: their t-interval over rounds.
    interval = seed_interval([math.log(a / b) for a, b in zip(top, bottom, strict=True)])
    low, high = (math.exp(bound) for bound in interval.bounds())
    ratio, n = math.exp(interval.estimate), interval.n_seeds
    good = (high <= target.threshold) if target.op == "<=" else (low >= target.threshold)
    bad = (low > target.threshold) if target.op == "<=" else (high < target.threshold)
    verdict = PASS if good else FAIL if bad else OPEN
    return Judged(target, verdict, ratio, low, high, n)


def to_markdown(folder: Path) -> str:
    """One line per target, then the page's verdict line."""
    judged = judge(folder, load(folder))
    lines = []
    for item in judged:
        lines += [item.line(), ""]
    verdicts = [j.verdict for j in judged]
    word = ("reproduced" if verdicts and all(v == PASS for v in verdicts)
            else "not reproduced" if FAIL in verdicts else "within noise")
    summary = "; ".join(f"{j.target.id} {j.verdict}" for j in judged)
    lines.append(f"Verdict: {word} — {summary}.")
    return "\n".join(lines) + "\n"
