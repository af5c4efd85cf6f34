"""Continuing and confirming a study only with the settings it was searched with."""

from __future__ import annotations

from pathlib import Path
import shutil

from mlflow import MlflowClient
import optuna
import pytest
import torch

from framework.cli.progress import RunDisplay
from framework.config import load_spec
from framework.errors import SpecError
from framework.reporting.comparison import build
from framework.reporting.comparison import to_markdown
from framework.tracking import Locations
from framework.tuning.confirm import run_confirmation
from framework.tuning.evidence import collect
from framework.tuning.fingerprint import CHANGES_ATTR
from framework.tuning.study import run_study
from tests.cli.test_cli import cli
from tests.conftest import TINY_STUDY
from tests.conftest import write_study


def parent_runs(locations: Locations, name: str, role: str = "study") -> list:
    client = MlflowClient(locations.tracking_uri)
    experiment = client.get_experiment_by_name(name)
    return client.search_runs([experiment.experiment_id], f"tags.dropout_lab.role = '{role}'")


@pytest.fixture(scope="module")
def searched_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the tiny study and its stores after a 1-trial search."""
    folder = tmp_path_factory.mktemp("searched")
    study = write_study(folder, TINY_STUDY.format(name="tiny"))
    run_study(load_spec(study, ["search.n_trials=1"]), Locations.resolve(folder / "mlruns"))
    return folder


@pytest.fixture
def searched(searched_once: Path, tmp_path: Path) -> tuple[Path, Path, Locations]:
    """A private copy of the searched study: its file, its home and its stores.

    (New runs' artifacts still go to the first folder's artifact root, named in the copied
    MLflow store; the tests read only run data.)
    """
    folder = tmp_path / "searched"
    shutil.copytree(searched_once, folder)
    return folder / "study.yaml", folder / "mlruns", Locations.resolve(folder / "mlruns")


@pytest.mark.slow
def test_a_changed_study_is_refused_unless_asked_and_the_change_is_recorded(searched) -> None:
    study, home, locations = searched
    changed = ["model.n_embd=32", "search.n_trials=2"]

    refused = cli("run", str(study), *changed, "--home", str(home), cwd=study.parent)
    assert refused.returncode == 2
    assert "Traceback" not in refused.stderr
    assert str(study) in refused.stderr and "model.n_embd (16 -> 32)" in refused.stderr
    assert "search.n_trials" not in refused.stderr, "the budget may change"
    assert "`name:`" in refused.stderr and "--continue-changed" in refused.stderr
    assert refused.stdout == "", "a refused run shows no progress"
    assert len(optuna.load_study(study_name="tiny", storage=locations.storage).trials) == 1
    assert len(parent_runs(locations, "tiny")) == 1, "a refused run starts no MLflow run"

    # What `run ... --continue-changed` does, in this process (the CLI only passes the flag).
    loaded = load_spec(study, changed)
    display = RunDisplay(loaded.spec)
    with display:
        run_study(loaded, locations, display, continue_changed=True)
    # One trial ran, but the bar counts the one the first invocation finished.
    assert display.progress.tasks[display.trials_task].completed == 2
    trials = optuna.load_study(study_name="tiny", storage=locations.storage).trials
    assert len(trials) == 2
    log = optuna.load_study(study_name="tiny", storage=locations.storage).user_attrs[CHANGES_ATTR]
    assert [entry["changed"] for entry in log] == [{"model.n_embd": [16, 32]}]
    latest = max(parent_runs(locations, "tiny"), key=lambda run: run.info.start_time)
    assert "model.n_embd (16 -> 32)" in latest.data.tags["dropout_lab.continued_changed"]
    run = MlflowClient(locations.tracking_uri).get_run(trials[1].user_attrs["mlflow_run_id"])
    assert run.data.params["model.n_embd"] == "32"


@pytest.mark.parametrize(
    ("override", "searched_key"),
    [("dropout.0.p=0.5", "search.space['dropout.0.p']"),
     ("dropout[0].p=0.5", "search.space['dropout.0.p']"),
     ("dropout.0={name: standard, p: 0.2}", "search.space['dropout.0']")],
)
def test_overriding_a_searched_key_is_an_error_naming_both(
    tmp_path: Path, override: str, searched_key: str
) -> None:
    text = TINY_STUDY.format(name="tiny")
    if searched_key.endswith("['dropout.0']"):
        text = text.replace("dropout.0.p: {type: float, low: 0.0, high: 0.3}",
                            "dropout.0: {type: choice, options: {a: {value: {name: none}}}}")
    study = write_study(tmp_path, text)
    with pytest.raises(SpecError) as error:
        load_spec(study, [override])
    message = str(error.value)
    assert str(study) in message and repr(override) in message and searched_key in message
    load_spec(study, ["train.lr=0.002", "dropout=[{name: standard, p: 0.2}]"])  # not searched


@pytest.mark.parametrize("override", ["train.device=cuda",
                                      "search.space={train.device: {type: categorical, "
                                      "choices: [cpu, cuda]}}"])
def test_cuda_on_a_machine_without_it_is_refused_before_anything_exists(
    tmp_path: Path, override: str
) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: a `device: cuda` study can run here")
    study = write_study(tmp_path, TINY_STUDY.format(name="tiny"))
    home = tmp_path / "mlruns"
    with pytest.raises(SpecError) as error:  # the CLI prints it and exits 2 (see above)
        run_study(load_spec(study, [override]), Locations.resolve(home))
    assert error.value.source == str(study) and error.value.key == "train.device"
    assert "'cuda' cannot run here" in error.value.message
    assert not home.exists(), "nothing may be created"


@pytest.mark.slow
def test_confirming_with_other_training_is_refused_unless_allowed_and_then_labelled(
    searched,
) -> None:
    study, _, locations = searched
    shorter = load_spec(study, ["train.max_steps=3"])
    # `confirm` prints this error and exits 2, as for any other SpecError of the plan.
    with pytest.raises(SpecError) as error:
        run_confirmation(shorter, locations, top=1, seeds=2)
    assert "train.max_steps (6 -> 3)" in error.value.message
    assert "--allow-changed" in error.value.message
    assert "tiny-confirm" not in optuna.get_all_study_names(locations.storage)
    assert parent_runs(locations, "tiny", "confirm") == []

    outcome = run_confirmation(shorter, locations, top=1, seeds=2, allow_changed=True)
    comparison = build(collect(outcome.study, []))
    settings = dict(comparison.settings)
    assert "train.max_steps=6" in settings["search 'tiny'"]
    assert "train.max_steps=3" in settings["confirmation of 'tiny'"]
    assert "differs from the search in train.max_steps (6 -> 3)" in \
        settings["confirmation of 'tiny'"]
    markdown = to_markdown(comparison)
    assert "- search 'tiny': " in markdown and "- confirmation of 'tiny': " in markdown
    [confirm_run] = parent_runs(locations, "tiny", "confirm")
    assert "train.max_steps (6 -> 3)" in confirm_run.data.tags["dropout_lab.changed_from_search"]
    client = MlflowClient(locations.tracking_uri)
    for trial in outcome.study.trials:  # the confirmation trained with what it said
        history = client.get_metric_history(trial.user_attrs["mlflow_run_id"], "val_loss")
        assert history[-1].step == 3
