"""``dropout-lab confirm`` on a real tiny study: the trials, runs and table it leaves behind."""

from __future__ import annotations

from pathlib import Path

from mlflow import MlflowClient
import mlflow.pytorch
import optuna
from optuna.trial import TrialState
import pytest
import torch

from framework.config import load_spec
from framework.data.base import Batch
from framework.models.pruning import load_checkpoint
from framework.reporting.comparison import build
from framework.tracking import Locations
from framework.tracking.records import MODEL_URI_ATTR
from framework.training.device import cpu_name
from framework.tuning.confirm import SEED_BASE
from framework.tuning.confirm import run_confirmation
from framework.tuning.evidence import collect
from framework.tuning.study import run_study
from tests.cli.test_cli import cli
from tests.conftest import TINY_STUDY
from tests.conftest import write_study


@pytest.fixture(scope="module")
def confirmed(tmp_path_factory: pytest.TempPathFactory):
    """A 2-trial tiny study whose best configuration and baseline were confirmed over 3 seeds."""
    folder = tmp_path_factory.mktemp("confirm")
    study = write_study(folder, TINY_STUDY.format(name="tiny")
                        + "confirm: {baseline: {dropout: [{name: standard, p: 0.0}]}}\n")
    home = folder / "mlruns"
    locations = Locations.resolve(home, tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    run_study(load_spec(study), locations)
    result = cli("confirm", str(study), "--top", "1", "--seeds", "3", "--home", str(home),
                 cwd=folder)
    return study, home, locations, result


def test_confirm_trains_each_configuration_on_the_same_fresh_seeds(confirmed) -> None:
    _, _, locations, result = confirmed
    assert result.returncode == 0, result.stderr
    search = optuna.load_study(study_name="tiny", storage=locations.storage)
    best = min(search.get_trials(states=(TrialState.COMPLETE,)), key=lambda t: t.value)
    study = optuna.load_study(study_name="tiny-confirm", storage=locations.storage)
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    pairs = sorted((t.params["config"], t.params["seed"]) for t in trials)
    seeds = [SEED_BASE, SEED_BASE + 1, SEED_BASE + 2]
    assert pairs == sorted((c, s) for c in ("top1", "baseline") for s in seeds)
    assert len(study.trials) == 6, "no failed or duplicated trials"
    assert {t.user_attrs.get("source_trial") for t in trials if t.params["config"] == "top1"} \
        == {best.number}
    # The same configuration with different seeds gives different results: seeds were applied.
    top1 = [t.value for t in trials if t.params["config"] == "top1"]
    assert len(set(top1)) == 3


def test_confirmation_trials_are_child_runs_of_one_confirmation_run(confirmed) -> None:
    _, _, locations, _ = confirmed
    client = MlflowClient(locations.tracking_uri)
    experiment = client.get_experiment_by_name("tiny")
    parents = client.search_runs([experiment.experiment_id], "tags.dropout_lab.role = 'confirm'")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    children = client.search_runs(
        [experiment.experiment_id], f"tags.mlflow.parentRunId = '{parents[0].info.run_id}'")
    study = optuna.load_study(study_name="tiny-confirm", storage=locations.storage)
    assert sorted(r.info.run_id for r in children) == sorted(
        t.user_attrs["mlflow_run_id"] for t in study.trials)
    by_run = {r.info.run_id: r for r in children}
    # Named apart from the search's `trial-<n>` runs of the same experiment.
    others = {r.info.run_name for r in client.search_runs([experiment.experiment_id])
              if r.info.run_id not in by_run}
    assert any(name.startswith("trial-") for name in others)
    assert not others & {r.info.run_name for r in children}
    for trial in study.trials:
        run = by_run[trial.user_attrs["mlflow_run_id"]]
        assert run.info.run_name == f"confirm-{trial.params['config']}-seed-{trial.params['seed']}"
        assert run.data.params["seed"] == str(trial.params["seed"])
        assert run.data.tags["dropout_lab.config"] == trial.params["config"]
        assert run.data.metrics["final/val_loss"] == pytest.approx(trial.value)
        if trial.params["config"] == "baseline":
            assert float(run.data.params["dropout.0.p"]) == 0.0
    artifacts = {a.path for a in client.list_artifacts(parents[0].info.run_id)}
    assert {"comparison.md", "study.yaml"} <= artifacts


def test_the_table_is_printed_and_written_as_markdown(confirmed) -> None:
    _, home, _, result = confirmed
    lines = result.stdout.splitlines()
    # The baseline is named by what it is; the table fits a 100-column terminal.
    assert ("baseline: baseline — confirm.baseline of the study: dropout standard (p=0), "
            "drops ") in result.stdout
    top1 = next(line for line in lines if line.startswith("top1 "))
    assert "paired t, p = " in top1
    assert next(line for line in lines if line.startswith("baseline ")).endswith(
        "(the baseline)")
    table = lines[lines.index("tiny: confirmation over seeds [1000, 1001, 1002]"):
                  next(i for i, line in enumerate(lines) if line.startswith("written "))]
    assert max(map(len, table)) <= 100
    markdown = (home / "reports" / "tiny-confirm.md").read_text()
    assert markdown.startswith("| configuration |")
    rows = [line for line in markdown.splitlines() if line.startswith("| top1")
            or line.startswith("| baseline")]
    assert len(rows) == 2 and all("| 3 |" in row for row in rows)
    assert f"- CPU: {cpu_name()}\n" in markdown  # every trial ran here


def test_a_table_of_trials_run_on_two_kinds_of_cpu_says_so(confirmed) -> None:
    """Speeds of trials from different machines differ by machine as well as by configuration."""
    _, _, locations, _ = confirmed
    source = optuna.load_study(study_name="tiny-confirm", storage=locations.storage)
    mixed = optuna.create_study(directions=source.directions)
    for key, value in source.user_attrs.items():
        mixed.set_user_attr(key, value)
    for trial in source.get_trials(states=(TrialState.COMPLETE,)):
        cpu = "CPU B" if trial.params["seed"] == SEED_BASE else "CPU A"
        mixed.add_trial(optuna.trial.create_trial(
            params=trial.params, distributions=trial.distributions, values=trial.values,
            user_attrs={**trial.user_attrs, "cpu": cpu}))
    settings = dict(build(collect(mixed, [])).settings)
    assert settings["CPU"].startswith("trials ran on different CPUs")
    assert "CPU A: 4 trials" in settings["CPU"] and "CPU B: 2 trials" in settings["CPU"]
    assert build(collect(source, [])).settings[-1] == ("CPU", cpu_name())


def test_confirming_again_trains_nothing_new(confirmed) -> None:
    study, _, locations, _ = confirmed
    outcome = run_confirmation(load_spec(study), locations, top=1, seeds=3)
    assert len(outcome.study.trials) == 6


def test_confirming_again_registers_no_second_version(confirmed, tmp_path: Path) -> None:
    study, home, locations, _ = confirmed
    again = cli("confirm", str(study), "--top", "1", "--seeds", "3", "--home", str(home),
                cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    [version] = MlflowClient(locations.tracking_uri).search_model_versions("name = 'tiny'")
    assert f"'tiny' version {version.version}" in again.stdout


@pytest.mark.parametrize(
    ("override", "key"),
    [("confirm.seeds=1", "confirm.seeds"), ("confirm.baseline={dropout: 3}", "confirm.baseline")],
)
def test_bad_confirm_section_exits_2_and_names_the_key(
    confirmed, tmp_path: Path, override: str, key: str
) -> None:
    study, home, _, _ = confirmed
    before = sorted(p.name for p in home.rglob("*"))
    result = cli("confirm", str(study), override, "--home", str(home), cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert str(study) in result.stderr and key in result.stderr
    assert sorted(p.name for p in home.rglob("*")) == before
    assert list(tmp_path.iterdir()) == []


def test_confirm_without_a_store_exits_2_and_creates_nothing(tmp_path: Path) -> None:
    study = write_study(tmp_path, TINY_STUDY.format(name="never_run"))
    result = cli("confirm", str(study), "--home", str(tmp_path / "mlruns"), cwd=tmp_path)
    assert result.returncode == 2
    assert "run the study first" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "mlruns").exists()


def test_the_best_confirmed_configuration_is_registered_and_its_model_loads_back(
        confirmed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, _, locations, result = confirmed
    client = MlflowClient(locations.tracking_uri)
    [version] = client.search_model_versions("name = 'tiny'")
    assert f"as 'tiny' version {version.version}" in result.stdout
    study = optuna.load_study(study_name="tiny-confirm", storage=locations.storage)
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    means = {label: sum(t.value for t in trials if t.params["config"] == label) / 3
             for label in ("top1", "baseline")}
    label = min(means, key=means.get)
    best = min((t for t in trials if t.params["config"] == label), key=lambda t: t.value)
    assert version.tags["dropout_lab.config"] == label
    assert version.run_id == best.user_attrs["mlflow_run_id"]
    assert version.source == best.user_attrs[MODEL_URI_ATTR]  # the logged model of that run
    monkeypatch.setenv("MLFLOW_TRACKING_URI", locations.tracking_uri)
    loaded = mlflow.pytorch.load_model(f"models:/tiny/{version.version}")
    best_pt = client.download_artifacts(version.run_id, "best.pt", str(tmp_path))
    batch = Batch(torch.randint(0, 65, (2, 16), generator=torch.Generator().manual_seed(1)))
    with torch.no_grad():
        assert torch.equal(loaded(batch).logits, load_checkpoint(Path(best_pt))(batch).logits)
