"""Benchmark targets: per-round ratios from printed output, judged against their thresholds."""

from __future__ import annotations

import json
from pathlib import Path
import subprocess
import sys

import pytest

from framework.reporting.targets import Target
from framework.reporting.targets import judge
from framework.reporting.targets import runs
from framework.reporting.targets import to_markdown


ROOT = Path(__file__).resolve().parents[2]
OUTPUT = """header line
  plain loop               median     24.26 ms/step   runs [24.0, 25.0, 24.5, 24.2, 24.8]
  framework loop           median     24.98 ms/step   runs [24.1, 25.2, 24.6, 24.2, 24.9]
  slow loop                median     48.00 ms/step   runs [48.3, 49.8, 49.1, 48.6, 49.4]
standard    median    58.42 ms/step  rounds [80.4, 58.4, 54.3]
1 worker :   347.6 trials/hour overall   runs [(381.8, 410.8), (313.5, 340.0)]
  infer full        35.39 ms/step
conditions: ...
"""


def target(numerator: str, denominator: str, op: str, threshold: float) -> Target:
    return Target("t", "a target", "out.txt", numerator, denominator, op, threshold)


def test_runs_reads_every_variants_rounds_in_each_printed_form(tmp_path: Path) -> None:
    (tmp_path / "out.txt").write_text(OUTPUT)
    found = runs(tmp_path / "out.txt")
    assert found["plain loop"] == [24.0, 25.0, 24.5, 24.2, 24.8]
    assert found["standard"] == [80.4, 58.4, 54.3]
    assert found["1 worker"] == [381.8, 313.5]  # the first of each pair: overall
    assert "infer full" not in found  # a median alone has no rounds


@pytest.mark.parametrize(("numerator", "denominator", "op", "threshold", "word"), [
    ("framework loop", "plain loop", "<=", 1.03, "pass"),     # about 1.003, tight
    ("slow loop", "plain loop", "<=", 1.03, "fail"),          # about 2.0
    ("slow loop", "plain loop", ">=", 1.5, "pass"),
    ("framework loop", "plain loop", ">=", 1.003, "within noise"),
    ("infer full", "plain loop", ">=", 1.0, "within noise"),  # medians only
])
def test_a_target_passes_or_fails_only_when_the_whole_interval_says_so(
    tmp_path: Path, numerator: str, denominator: str, op: str, threshold: float, word: str
) -> None:
    (tmp_path / "out.txt").write_text(OUTPUT)
    (judged,) = judge(tmp_path, [target(numerator, denominator, op, threshold)])
    assert judged.verdict == word
    if word != "within noise" or numerator != "infer full":
        assert judged.low <= judged.ratio <= judged.high and judged.rounds == 5
    else:
        assert "pending a re-run" in judged.line()


def test_the_page_verdict_passes_only_when_every_target_does(tmp_path: Path) -> None:
    (tmp_path / "out.txt").write_text(OUTPUT)
    entries = [{"id": "a", "text": "x", "file": "out.txt", "numerator": "slow loop",
                "denominator": "plain loop", "op": ">=", "threshold": 1.5}]
    (tmp_path / "targets.json").write_text(json.dumps(entries))
    assert to_markdown(tmp_path).splitlines()[-1] == "Verdict: reproduced — a pass."
    entries.append({**entries[0], "id": "b", "threshold": 3.0})
    (tmp_path / "targets.json").write_text(json.dumps(entries))
    assert to_markdown(tmp_path).splitlines()[-1] == "Verdict: not reproduced — a pass; b fail."


@pytest.mark.slow
@pytest.mark.parametrize(("script", "arguments", "variants"), [
    ("layerdrop.py", ["--n-layer", "2", "--n-head", "2", "--n-embd", "16", "--block-size", "8",
                      "--batch-size", "2", "--steps", "1", "--repeats", "2"],
     {"train p=0", "train p=0.5", "infer full", "infer half"}),
    ("structured_rnn.py", ["--hidden", "16", "--batch", "4", "--p", "0.5", "--steps", "2",
                           "--repeats", "2", "--steps-per-sample", "1"],
     {"dense p=0.5 step @ hidden 16 batch 4", "struct p=0.5 step @ hidden 16 batch 4"}),
])
def test_the_benchmarks_print_every_round_of_their_targets_variants(
    tmp_path: Path, script: str, arguments: list[str], variants: set[str]
) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *arguments],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    (tmp_path / "out.txt").write_text(result.stdout)
    found = runs(tmp_path / "out.txt")
    assert variants <= set(found), sorted(found)
    assert all(len(found[name]) == 2 for name in variants)
