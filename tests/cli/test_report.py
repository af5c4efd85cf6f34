"""``dropout-lab report`` on a real study with arms, checked in files, MLflow and a browser."""

from __future__ import annotations

from pathlib import Path

from mlflow import MlflowClient
import pytest

from framework.config import load_spec
from framework.errors import SpecError
from framework.reporting.browser import find_chromium
from framework.reporting.browser import inspect_page
from framework.tracking import Locations
from framework.tuning.confirm import arm_loaded
from framework.tuning.confirm import plan_confirmation
from framework.tuning.confirm import run_confirmation
from framework.tuning.study import run_study
from tests.cli.test_cli import cli
from tests.conftest import TINY_STUDY
from tests.conftest import write_study


ARMS = """
arms:
  plain:
    baseline: true
    dropout: [{name: none}]
    search: {n_trials: 2, space: {train.lr: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}}}
  standard: {search: {n_trials: 2}}
  never: {search: {n_trials: 1}}
"""
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory):
    """Arms ``plain`` (baseline) and ``standard`` searched and confirmed; ``never`` not run."""
    folder = tmp_path_factory.mktemp("report")
    study = write_study(folder, TINY_STUDY.format(name="armed") + ARMS)
    home = folder / "mlruns"
    locations = Locations.resolve(home, tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    loaded = load_spec(study)
    for arm in ("plain", "standard"):
        run_study(arm_loaded(loaded, arm), locations)
    run_confirmation(loaded, locations, top=1, seeds=2)
    result = cli("report", str(study), "--home", str(home), cwd=folder)
    return study, home, locations, result


def test_the_table_compares_each_arms_confirmed_best_with_the_baseline_arm(reported) -> None:
    _, home, _, result = reported
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    standard = next(line for line in lines if line.startswith("standard/top1"))
    assert "paired t" in standard and (" 2 " in standard)
    assert any(line.startswith("plain/top1 (baseline)") for line in lines)
    never = next(line for line in lines if line.startswith("never"))
    assert "no finished trial in this arm" in never
    assert "note: arm 'never': no finished trial" in result.stdout
    markdown = (home / "reports" / "armed-report.md").read_text()
    assert "| standard/top1 |" in markdown and "| never |" in markdown


def test_the_page_is_self_contained_and_logged_with_its_pngs(reported) -> None:
    _, home, locations, _ = reported
    page = home / "reports" / "armed" / "report.html"
    text = page.read_text()
    assert "<script src" not in text and "<link" not in text and "@import" not in text
    assert text.count("Plotly.newPlot") >= 4
    figures = home / "reports" / "armed" / "figures"
    expected = {"learning-curves.png", "rates.png", "search-plain-history.png",
                "search-standard-history.png", "search-standard-parallel.png"}
    assert expected <= {p.name for p in figures.iterdir()}
    assert all(p.read_bytes().startswith(PNG) for p in figures.iterdir())
    client = MlflowClient(locations.tracking_uri)
    experiment = client.get_experiment_by_name("armed")
    runs = client.search_runs([experiment.experiment_id], "tags.dropout_lab.role = 'report'")
    assert len(runs) == 1
    logged = {a.path for a in client.list_artifacts(runs[0].info.run_id)}
    assert {"report.html", "comparison.md", "figures"} <= logged
    pngs = {a.path for a in client.list_artifacts(runs[0].info.run_id, "figures")}
    assert {f"figures/{name}" for name in expected} <= pngs


def test_an_arm_without_finished_trials_is_reported_not_fatal(reported) -> None:
    study, _, locations, _ = reported
    # Only the never-run arm: nothing at all to confirm is an error that says why.
    only_never = load_spec(study, ["arms={never: {search: {n_trials: 1}}}", "name=other"])
    with pytest.raises(SpecError, match="arms never has no complete trial"):
        plan_confirmation(only_never, locations.storage)
    plan = plan_confirmation(load_spec(study), locations.storage)
    assert plan.empty_arms == ["never"]


def test_the_report_renders_in_headless_chromium(reported, tmp_path: Path) -> None:
    if find_chromium() is None:
        pytest.skip("no chromium on PATH (apt-get install -y chromium); .ci/run installs it")
    _, home, _, _ = reported
    shot = tmp_path / "report.png"
    check = inspect_page(home / "reports" / "armed" / "report.html", shot)
    assert check.errors == []
    assert len(check.plots) >= 4
    for plot in check.plots:
        assert plot["width"] > 300 and plot["height"] > 200, plot
        assert plot["svg"] > 0, f"plot {plot['id']} has no rendered SVG"
    assert shot.read_bytes().startswith(PNG) and shot.stat().st_size > 20_000


def test_report_of_an_unknown_study_exits_2(reported, tmp_path: Path) -> None:
    study, home, _, _ = reported
    result = cli("report", str(study), "name=nobody", "arms={}", "--home", str(home),
                 cwd=tmp_path)
    assert result.returncode == 2
    assert "no study named nobody" in result.stderr and "Traceback" not in result.stderr
