"""Ctrl-C on a real `dropout-lab run`: the running trial fails cleanly, the next run continues."""

from __future__ import annotations

import os
from pathlib import Path
import signal
import subprocess
import sys
import time

from mlflow import MlflowClient
import optuna
from optuna.trial import TrialState
import pytest

from tests.conftest import TINY_STUDY
from tests.conftest import write_study


@pytest.mark.slow
def test_ctrl_c_marks_the_trial_failed_and_the_study_continues(tmp_path: Path) -> None:
    study_file = write_study(tmp_path, TINY_STUDY.format(name="interrupted"))
    args = [sys.executable, "-m", "framework.cli", "run", str(study_file), "search.n_trials=2",
            "train.max_steps=3000", "train.eval_every=20"]
    env = {**os.environ, "COLUMNS": "200"}
    process = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    storage = f"sqlite:///{tmp_path / 'mlruns' / 'optuna.db'}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        time.sleep(0.3)
        try:
            trials = optuna.load_study(study_name="interrupted", storage=storage).trials
        except Exception:
            continue
        if trials and trials[0].intermediate_values:
            break
    process.send_signal(signal.SIGINT)
    try:  # generous: on a loaded machine the cleanup (stores, runs, summary) takes a while
        out, err = process.communicate(timeout=300)
    except subprocess.TimeoutExpired:  # say where it stood, rather than only that it hung
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"still running 300 s after Ctrl-C:\n{out[-2000:]}\n{err[-4000:]}")
    assert process.returncode == 130, out[-2000:] + err[-4000:]
    assert "Traceback" not in err and "run the same command again" in err

    study = optuna.load_study(study_name="interrupted", storage=storage)
    assert [t.state for t in study.trials] == [TrialState.FAIL]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    assert client.get_run(study.trials[0].user_attrs["mlflow_run_id"]).info.status == "KILLED"
    experiment = client.get_experiment_by_name("interrupted")
    parent, = client.search_runs([experiment.experiment_id], "tags.dropout_lab.role = 'study'")
    assert parent.info.status == "KILLED"

    # Shorter trials to finish quickly: a changed setting, so continuing must be asked for.
    again = subprocess.run([*args[:5], "search.n_trials=2", "train.max_steps=6",
                            "--continue-changed"], cwd=tmp_path,
                           env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    states = [t.state for t in optuna.load_study(study_name="interrupted", storage=storage).trials]
    assert states == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]


@pytest.mark.slow
def test_the_run_after_a_killed_one_closes_its_parent_run_and_says_why_its_trial_failed(
    tmp_path: Path,
) -> None:
    study_file = write_study(tmp_path, TINY_STUDY.format(name="killed"))
    args = [sys.executable, "-m", "framework.cli", "run", str(study_file), "search.n_trials=1",
            "search.heartbeat_interval=1", "search.grace_period=2", "train.max_steps=100",
            "train.eval_every=10"]
    env = {**os.environ, "COLUMNS": "200"}
    process = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    storage = f"sqlite:///{tmp_path / 'mlruns' / 'optuna.db'}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
        try:
            trials = optuna.load_study(study_name="killed", storage=storage).trials
        except Exception:
            continue
        if trials and trials[0].intermediate_values:  # its first checkpoint is uploaded
            break
    process.kill()  # SIGKILL: nothing of it runs after this
    process.wait()

    again = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr
    study = optuna.load_study(study_name="killed", storage=storage)
    dead, retry = study.trials
    assert dead.state == TrialState.FAIL and retry.state == TrialState.COMPLETE
    reason = f"worker {dead.user_attrs['worker']} died: no heartbeats for 2 s"
    assert dead.user_attrs["fail_reason"] == reason
    assert "fail_reason" not in retry.user_attrs
    assert f"trial 0 failed: {reason}" in again.stdout
    # The retry resumed from the dead trial's checkpoint without MLflow's progress bar.
    assert retry.user_attrs["resumed_from_step"] >= 10
    assert "Downloading artifacts" not in again.stdout + again.stderr

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("killed")
    runs = client.search_runs([experiment.experiment_id])
    assert all(run.info.status != "RUNNING" for run in runs)
    first, second = sorted((r for r in runs if r.data.tags.get("dropout_lab.role") == "study"),
                           key=lambda r: r.info.start_time)
    assert first.info.status == "KILLED" and second.info.status == "FINISHED"
    pid = dead.user_attrs["worker"].split(":")[-1]
    assert f":{pid} " in first.data.tags["dropout_lab.fail_reason"]
    assert client.get_run(dead.user_attrs["mlflow_run_id"]).info.status == "FAILED"
    # Once the retry finished, neither attempt keeps its training state.
    for trial in (dead, retry):
        assert client.list_artifacts(trial.user_attrs["mlflow_run_id"], "checkpoint") == []
