"""``dropout-lab evaluate``: a trial's best checkpoint scored on a labelled file."""

from __future__ import annotations

import os
from pathlib import Path
import subprocess
import sys

import optuna
import pytest

from framework.cli.evaluate import download_checkpoint
from framework.cli.evaluate import score_checkpoint
from framework.config import load_spec
from framework.errors import SpecError
from framework.tuning.study import run_study
from tests.conftest import write_study
from tests.plugins.test_r_drop import SST2_STUDY
from tests.plugins.test_r_drop import labelled_file


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    # Generous: the command imports torch, MLflow and Optuna and rebuilds the dataset.
    return subprocess.run([sys.executable, "-m", "framework.cli", *args], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=600)


def scores_on_the_test_split(study: Path, checkpoint: Path) -> dict[str, float]:
    """The checkpoint's scores on its study's test split (the same file as ``dev`` here), by the
    training code's own evaluation: the dataset's batches, not the labelled-file reader."""
    import torch

    from framework import registry
    from framework.models.pruning import load_checkpoint
    from framework.training.evaluate import evaluate

    spec = load_spec(study).spec
    dataset = registry.create_dataset(spec.data, spec.model)
    model = load_checkpoint(checkpoint, dataset.info)
    return evaluate(model, dataset, spec.train, torch.device("cpu"), splits=("test",))


def test_scores_a_trials_best_checkpoint_on_a_labelled_file(tmp_path: Path, locations) -> None:
    dev = labelled_file(tmp_path, n=40)
    study = write_study(tmp_path, SST2_STUDY.format(
        name="short", path=dev, strategy="{name: r_drop, alpha: 1.0}"))
    run_study(load_spec(study), locations)
    trial = optuna.load_study(study_name="short", storage=locations.storage).trials[0]

    home = Path(locations.storage.removeprefix("sqlite:///")).parent
    result = cli("evaluate", dev, "--study", str(study), "--trial", "0", "--home", str(home),
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    printed = dict(line.split(": ") for line in result.stdout.strip().splitlines())
    assert int(printed["examples"]) == 40
    # The test split is the same file, cut into 5 batches of 8: the same accuracy and loss.
    checkpoint = download_checkpoint("short", 0, locations, tmp_path / "dl")
    expected = scores_on_the_test_split(study, checkpoint)
    assert float(printed["accuracy"]) == pytest.approx(expected["test_accuracy"], abs=1e-5)
    assert float(printed["loss"]) == pytest.approx(expected["test_loss"], rel=1e-4)
    assert "test_loss" not in trial.user_attrs  # a search trial never scores the test split

    by_8 = score_checkpoint(checkpoint, Path(dev), batch_size=8)
    by_7 = score_checkpoint(checkpoint, Path(dev), batch_size=7)
    assert by_7["accuracy"] == pytest.approx(by_8["accuracy"], abs=1e-6)
    assert by_7["loss"] == pytest.approx(by_8["loss"], rel=1e-5)
    with pytest.raises(SpecError, match="no trial 3"):
        download_checkpoint("short", 3, locations, tmp_path / "dl")


def test_bad_arguments_exit_2_with_a_message(tmp_path: Path) -> None:
    labelled = labelled_file(tmp_path, n=4)
    result = cli("evaluate", labelled, "--checkpoint", str(tmp_path / "missing.pt"),
                 cwd=tmp_path)
    assert result.returncode == 2 and "no such checkpoint" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_trial_of_a_study_with_arms_is_found_by_its_arm(tmp_path: Path, locations) -> None:
    from framework.tuning.confirm import run_arms
    from tests.conftest import invoke

    dev = labelled_file(tmp_path, n=40)
    text = SST2_STUDY.format(name="armed", path=dev, strategy="{name: r_drop, alpha: 1.0}")
    text += "arms:\n  standard: {dropout: [{name: standard, p: 0.1}]}\n  r_drop: {}\n"
    study = write_study(tmp_path, text)
    run_arms(load_spec(study), locations)
    home = str(Path(locations.storage.removeprefix("sqlite:///")).parent)
    result = invoke("evaluate", dev, "--study", str(study), "--trial", "0", "--home", home)
    assert result.exit_code == 2 and "give --arm NAME" in result.stderr
    scored = set()
    for arm in ("standard", "r_drop"):
        result = invoke("evaluate", dev, "--study", str(study), "--trial", "0", "--arm", arm,
                        "--home", home)
        assert result.exit_code == 0, result.stderr
        printed = dict(line.split(": ") for line in result.stdout.strip().splitlines())
        checkpoint = download_checkpoint(f"armed.{arm}", 0, locations, tmp_path / arm)
        expected = scores_on_the_test_split(study, checkpoint)
        assert float(printed["loss"]) == pytest.approx(expected["test_loss"], rel=1e-4)
        scored.add(printed["loss"])
    assert len(scored) == 2  # the arms' checkpoints differ: each was found by its own arm
