"""``dropout-lab compare``: the table per group, and each group against a baseline group."""

from __future__ import annotations

from pathlib import Path

from mlflow import MlflowClient

from framework.training.device import cpu_name
from tests.conftest import TINY_STUDY
from tests.conftest import invoke
from tests.conftest import write_study


GRID = TINY_STUDY.replace("n_trials: 2", "n_trials: 4").replace(
    "sampler: {{name: random, seed: 0}}", "sampler: {{name: grid}}").replace(
    "dropout.0.p: {{type: float, low: 0.0, high: 0.3}}",
    "dropout.0.p: {{type: categorical, choices: [0.0, 0.3]}}\n"
    "    seed: {{type: categorical, choices: [0, 1]}}")


def compare_runs(home: Path) -> int:
    client = MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    return len(client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        "tags.`dropout_lab.role` = 'compare'"))


def test_baseline_compares_each_rate_with_the_baseline_rate_paired_by_seed(
    tmp_path: Path,
) -> None:
    study = write_study(tmp_path, GRID.format(name="grid"))
    home = tmp_path / "mlruns"
    assert invoke("run", str(study), "--home", str(home)).exit_code == 0
    page = tmp_path / "page.md"
    result = invoke("compare", str(study), "--home", str(home), "--by", "dropout.0.p",
                    "--metric", "val_loss", "--baseline", "dropout.0.p=0.0",
                    "--markdown", str(page))
    assert result.exit_code == 0, result.stderr
    rows = page.read_text().splitlines()
    assert rows[0] == ("| dropout.0.p | n | val_loss (mean ± s.e. [95% CI]) | "
                       "Δ val_loss vs dropout.0.p=0.0 [95% CI] |")
    by_rate = {row.split("|")[1].strip(): row for row in rows[2:4]}
    assert by_rate["0.0"].endswith("| (reference) |")
    assert "paired t, p = " in by_rate["0.3"]
    assert rows[-1] == f"CPU: {cpu_name()}"  # every trial ran on this machine
    assert f"CPU: {cpu_name()}" in result.stdout
    assert compare_runs(home) == 1


def test_a_baseline_that_is_not_grouped_by_is_refused_before_anything_is_logged(
    tmp_path: Path,
) -> None:
    study = write_study(tmp_path, GRID.format(name="grid"))
    home = tmp_path / "mlruns"
    assert invoke("run", str(study), "--home", str(home), "search.n_trials=2").exit_code == 0
    for baseline, message in (("seed=0", "'seed' is not grouped by"),
                              ("dropout.0.p=0.5", "no complete trial has dropout.0.p=0.5")):
        result = invoke("compare", str(study), "--home", str(home), "--by", "dropout.0.p",
                        "--baseline", baseline, "--markdown", str(tmp_path / "page.md"))
        assert result.exit_code == 2, result.stderr
        assert "--baseline" in result.stderr and message in result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "page.md").exists()
    assert compare_runs(home) == 0


def test_a_study_with_arms_compares_the_arm_that_is_named(tmp_path: Path) -> None:
    grid = TINY_STUDY.replace("sampler: {{name: random, seed: 0}}", "sampler: {{name: grid}}")
    text = grid.replace("{{type: float, low: 0.0, high: 0.3}}",
                        "{{type: categorical, choices: [0.0, 0.3]}}").format(name="armed")
    text += "arms:\n  low: {train: {lr: 1.0e-4}}\n  high: {}\n"
    study = write_study(tmp_path, text)
    home = tmp_path / "mlruns"
    assert invoke("run", str(study), "--home", str(home)).exit_code == 0
    for arm, message in ((None, "the study has arms (low, high)"),
                         ("middle", "--arm middle: no such arm (arms: low, high)")):
        result = invoke("compare", str(study), "--home", str(home), "--by", "dropout.0.p",
                        *(("--arm", arm) if arm else ()))
        assert result.exit_code == 2, result.stderr
        assert message in result.stderr and "Traceback" not in result.stderr
    assert compare_runs(home) == 0
    result = invoke("compare", str(study), "--home", str(home), "--by", "dropout.0.p",
                    "--metric", "val_loss", "--arm", "high")
    assert result.exit_code == 0, result.stderr
    rows = (home / "reports" / "armed.high-compare.md").read_text().splitlines()
    table = [row for row in rows[2:] if row.startswith("|")]
    assert sorted(row.split("|")[1].strip() for row in table) == ["0.0", "0.3"]
    assert compare_runs(home) == 1
