"""A run or worker none of whose trials finished says so: non-zero exit and a FAILED parent run."""

from __future__ import annotations

from pathlib import Path

from mlflow import MlflowClient
import pytest

from tests.conftest import TINY_STUDY
from tests.conftest import write_study
from tests.tuning.test_workers import run_cli


@pytest.mark.slow
def test_a_run_or_worker_whose_every_trial_failed_exits_1(tmp_path: Path) -> None:
    study = write_study(tmp_path, TINY_STUDY.format(name="all-fail"))
    # Valid, finite, and still hopeless: the loss is NaN by the first evaluation.
    process = run_cli(["run", str(study), "search.n_trials=1", "train.lr=1e30"], cwd=tmp_path)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 1, out + err
    assert "Traceback" not in err
    assert "no trial of this run finished" in err
    assert "NonFiniteLoss" in out  # the trials' reasons are in the summary
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("all-fail")
    parents = client.search_runs([experiment.experiment_id], "tags.dropout_lab.role = 'study'")
    assert [r.info.status for r in parents] == ["FAILED"]
    # A worker joining the study fares no better, and says so the same way.
    process = run_cli(["worker", str(study), "search.n_trials=1", "train.lr=1e30"], cwd=tmp_path)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 1, out + err
    assert "Traceback" not in err
    assert "no trial of this worker finished" in err and "(0 of 1 finished)" in err


@pytest.mark.slow
def test_an_arm_whose_every_trial_failed_makes_the_run_exit_1_naming_it(tmp_path: Path) -> None:
    text = TINY_STUDY.format(name="armed-fail") + (
        "arms:\n  fine: {search: {n_trials: 1}}\n"
        "  hopeless: {train: {lr: 1.0e+30}, search: {n_trials: 1}}\n")
    study = write_study(tmp_path, text)
    process = run_cli(["run", str(study)], cwd=tmp_path)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 1, out + err
    assert "Traceback" not in err
    assert "no trial of armed-fail.hopeless finished" in err
    assert "armed-fail.fine" not in err
