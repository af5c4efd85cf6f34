"""``dropout-lab report`` on a real study with arms, checked in files, MLflow and a browser."""

from __future__ import annotations

from pathlib import Path

from mlflow import MlflowClient
import optuna
from optuna.trial import TrialState
import pytest

from framework.config import load_spec
from framework.errors import SpecError
from framework.reporting.browser import find_chromium
from framework.reporting.browser import inspect_page
from framework.reporting.figures import Series
from framework.tracking import Locations
from framework.tuning.confirm import arm_loaded
from framework.tuning.confirm import plan_confirmation
from framework.tuning.confirm import run_confirmation
from framework.tuning.study import run_study
from tests.cli.test_cli import cli
from tests.conftest import TINY_STUDY
from tests.conftest import TinyRuns
from tests.conftest import invoke
from tests.conftest import write_study


ARMS = """
arms:
  plain:
    baseline: true
    dropout: [{name: none}]
    search: {n_trials: 2, space: {train.lr: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}}}
  standard: {search: {n_trials: 2}}
  never: {search: {n_trials: 1}}
claims:  # claims compare arms: every per-arm and per-configuration spec leaves them out
  - {id: helps, text: "Dropout helps.", candidate: standard, baseline: plain,
     metric: test_loss, direction: lower}
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
    standard = next(line for line in lines if line.startswith("standard/top1 "))
    assert "paired t" in standard
    assert next(line for line in lines if line.startswith("  standard/top1: ")).startswith(
        "  standard/top1: dropout standard (p=")
    assert "; 2 seeds; search trial " in result.stdout
    # The baseline arm's best, named by its dropout.
    assert "baseline: plain/top1 — the best of arm 'plain': dropout none, drops nothing" \
        in result.stdout
    never = next(line for line in lines if line.startswith("  never:"))
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
    expected = {"learning-curves.png", "search-plain-history.png",
                "search-standard-history.png", "search-standard-parallel.png"}
    assert expected <= {p.name for p in figures.iterdir()}
    # Standard dropout's rate never changes: no flat line plotted for it.
    assert not (figures / "rates.png").exists()
    # Each configuration's row links to its confirmation runs in the MLflow UI.
    confirm = optuna.load_study(study_name="armed-confirm", storage=locations.storage)
    for trial in confirm.get_trials(states=(TrialState.COMPLETE,)):
        run_link = f'href="http://127.0.0.1:5000/#/runs/{trial.user_attrs["mlflow_run_id"]}"'
        assert f'<a {run_link}>seed {trial.params["seed"]}</a>' in text
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
    only_never = load_spec(study, ["arms={never: {search: {n_trials: 1}}}", "name=other",
                                   "claims=[]"])
    with pytest.raises(SpecError, match="arms never has no complete trial"):
        plan_confirmation(only_never, locations.storage)
    plan = plan_confirmation(load_spec(study), locations.storage)
    assert plan.empty_arms == ["never"]


def test_report_by_takes_a_key_that_only_an_arm_searches(reported, tmp_path: Path) -> None:
    from framework.cli.report import searched_keys
    from framework.reporting.html import build_report

    study, home, locations, _ = reported
    loaded = load_spec(study)
    assert searched_keys(loaded) == ["dropout.0.p", "train.lr"]  # train.lr: the plain arm's
    built = build_report(loaded, locations, tmp_path / "report", ["train.lr"])
    curves = next(f for f in built.figures if f.key == "learning-curves")
    names = [trace.name for trace in curves.plotly.data if trace.showlegend is not False]
    # The plain arm's two trials each at their own rate; the standard arm, which does not
    # search it, as one line over its trials.
    assert sum(name.startswith("plain train.lr=") for name in names) == 2
    assert [name for name in names if name.startswith("standard")] == ["standard (n=2)"]
    refused = invoke("report", str(study), "--home", str(home), "--by", "train.batch_size")
    assert refused.exit_code == 2
    assert ("'train.batch_size' is not searched (search.space and the arms' spaces: "
            "dropout.0.p, train.lr)") in refused.stderr


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
    result = cli("report", str(study), "name=nobody", "arms={}", "claims=[]", "--home", str(home),
                 cwd=tmp_path)
    assert result.returncode == 2
    assert "no study named nobody" in result.stderr and "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def reported_twice(tiny_runs: TinyRuns):
    """``report`` run twice on a searched study that has no confirmation."""
    args = ("report", str(tiny_runs.files["searched"]), "--home", str(tiny_runs.home))
    return tiny_runs, invoke(*args), invoke(*args)


def test_without_confirmation_the_report_lists_every_trial_with_its_run(reported_twice) -> None:
    tiny_runs, first, _ = reported_twice
    assert first.exit_code == 0, first.output
    page = (tiny_runs.home / "reports" / "searched" / "report.html").read_text()
    study = optuna.load_study(study_name="searched", storage=tiny_runs.locations.storage)
    assert len(study.trials) == 2
    for trial in study.trials:
        url = f"http://127.0.0.1:5000/#/runs/{trial.user_attrs['mlflow_run_id']}"
        assert f'<td>{trial.number}</td><td>complete</td><td>{trial.value:.4f}</td>' in page
        assert f'<a href="{url}">run</a>' in page
        line = f"searched trial {trial.number}: complete  val_loss={trial.value:.4f}"
        assert line in first.stdout and url in first.stdout
    assert "dropout-lab ui searched --home " in page  # how to open the UI the links point into


def test_too_few_trials_give_a_warning_instead_of_importances(reported_twice) -> None:
    tiny_runs, first, _ = reported_twice
    figures = tiny_runs.home / "reports" / "searched" / "figures"
    # What is missing and what to do, in that order.
    assert ("warning: searched: parameter importances: not drawn: needs at least 50 complete "
            "trials, this search has 2 (") in first.stdout
    assert "PED-ANOVA" in first.stdout
    assert "raise search.n_trials to 50 or more and run the study again" in first.stdout
    assert not (figures / "search-study-importances.png").exists()
    assert (figures / "search-study-history.png").exists()
    page = (tiny_runs.home / "reports" / "searched" / "report.html").read_text()
    assert '<p class="warning">warning: not drawn: needs at least 50 complete trials' in page
    # Each trial's standard dropout kept its rate: said, not plotted as flat lines.
    assert "dropout rates that never change (not plotted)" in first.stdout
    assert not (figures / "rates.png").exists()


def test_each_report_updates_the_one_report_run_of_the_study(reported_twice) -> None:
    tiny_runs, first, second = reported_twice
    assert second.exit_code == 0, second.output
    client = MlflowClient(tiny_runs.locations.tracking_uri)
    experiment = client.get_experiment_by_name("searched")
    runs = client.search_runs([experiment.experiment_id], "tags.dropout_lab.role = 'report'")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert f"logged to MLflow run {runs[0].info.run_id}" in first.stdout
    assert f"logged to MLflow run {runs[0].info.run_id}" in second.stdout
    logged = {a.path for a in client.list_artifacts(runs[0].info.run_id)}
    assert {"report.html", "figures"} <= logged


def test_the_page_is_written_once_and_logged_from_where_it_lies(reported_twice,
                                                                tmp_path: Path) -> None:
    """The page (megabytes of inlined plotly) is neither written twice nor copied to upload it."""
    tiny_runs, _, _ = reported_twice
    folder = tiny_runs.home / "reports" / "searched"
    assert sorted(folder.rglob("*.html")) == [folder / "report.html"]
    client = MlflowClient(tiny_runs.locations.tracking_uri)
    experiment = client.get_experiment_by_name("searched")
    [run] = client.search_runs([experiment.experiment_id], "tags.dropout_lab.role = 'report'")
    logged = client.download_artifacts(run.info.run_id, "report.html", str(tmp_path))
    assert Path(logged).read_bytes() == (folder / "report.html").read_bytes()


def test_a_rate_that_changes_is_plotted_and_a_constant_one_is_not() -> None:
    assert Series("a", {0: {1: 0.1, 2: 0.1}, 1: {1: 0.1}}).constant() == 0.1
    assert Series("b", {0: {1: 0.2, 2: 0.1}}).constant() is None
    assert Series("c", {0: {1: 0.1}, 1: {1: 0.2}}).constant() is None


def test_report_by_draws_one_curve_per_rate_over_its_seeds(tmp_path: Path) -> None:
    """``report --by`` groups a grid's trials (rates x seeds) into one line per rate, so that a
    results page shows every arm instead of the three best trials."""
    from framework.reporting.html import build_report
    from tests.cli.test_compare import GRID

    study = write_study(tmp_path, GRID.format(name="grid"))
    home = tmp_path / "mlruns"
    assert invoke("run", str(study), "--home", str(home)).exit_code == 0
    result = invoke("report", str(study), "--home", str(home), "--by", "dropout.0.p")
    assert result.exit_code == 0, result.stderr
    assert "one line per dropout.0.p" in result.stdout
    built = build_report(load_spec(study, []), Locations.resolve(home), tmp_path / "report",
                         ["dropout.0.p"])
    curves = next(f for f in built.figures if f.key == "learning-curves")
    names = sorted(trace.name for trace in curves.plotly.data if trace.showlegend is not False)
    assert names == ["dropout.0.p=0.0 (n=2)", "dropout.0.p=0.3 (n=2)"]
    refused = invoke("report", str(study), "--home", str(home), "--by", "train.lr")
    assert refused.exit_code == 2
    assert "--by" in refused.stderr and "'train.lr' is not searched" in refused.stderr


def test_an_objective_logged_at_every_evaluation_gets_its_own_curves(tmp_path: Path) -> None:
    study = write_study(tmp_path, """
        name: digits-accuracy
        model: {name: mlp, hidden: [16]}
        data: {name: digits}
        train: {max_steps: 20, batch_size: 16, eval_every: 10, eval_batches: 1}
        dropout: [{name: standard, p: 0.1}]
        search:
          n_trials: 1
          objectives: [{metric: val_accuracy, direction: maximize}]
        """)
    home = tmp_path / "mlruns"
    assert invoke("run", str(study), "--home", str(home)).exit_code == 0
    result = invoke("report", str(study), "--home", str(home))
    assert result.exit_code == 0, result.stderr
    figures = home / "reports" / "digits-accuracy" / "figures"
    assert (figures / "learning-curves.png").exists()
    assert (figures / "curves-val_accuracy.png").read_bytes().startswith(PNG)


def test_each_kind_of_site_whose_rate_changes_gets_its_own_rates_figure(tmp_path: Path) -> None:
    """Two schedules on different kinds, two searched trials: a figure per kind, a line per trial
    in each, and the kind with a fixed rate named instead of drawn."""
    from framework.reporting.html import build_report

    study = write_study(tmp_path, """
        name: two-schedules
        model: {name: gpt, n_layer: 1, n_head: 2, n_embd: 16, block_size: 16}
        data: {name: shakespeare_char}
        train: {max_steps: 6, batch_size: 4, eval_every: 2, eval_batches: 1}
        dropout:
          - {name: linear_decay, p_start: 0.3, p_end: 0.0, sites: [attention]}
          - {name: exp_decay, p_start: 0.2, p_end: 0.01, sites: [residual]}
          - {name: standard, p: 0.1, sites: [embedding]}
        search:
          n_trials: 2
          sampler: {name: random, seed: 0}
          space: {dropout.0.p_start: {type: float, low: 0.2, high: 0.4}}
        """)
    home = tmp_path / "mlruns"
    assert invoke("run", str(study), "--home", str(home)).exit_code == 0
    built = build_report(load_spec(study, []), Locations.resolve(home), tmp_path / "report")
    rates = {f.key: f for f in built.figures if f.key.startswith("rates")}
    assert set(rates) == {"rates-attention", "rates-residual"}
    for kind, figure in rates.items():
        assert figure.png is not None and figure.png.read_bytes().startswith(PNG)
        names = sorted(t.name for t in figure.plotly.data if t.showlegend is not False)
        assert names == ["trial 0 (n=1)", "trial 1 (n=1)"], kind
    attention = [list(t.y) for t in rates["rates-attention"].plotly.data]
    assert all(y[0] > y[-1] == 0.0 for y in attention)  # decayed to p_end
    assert any("embedding" in note and "0.1" in note for note in built.notes)
