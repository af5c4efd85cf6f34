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
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130
    assert "Traceback" not in err and "run the same command again" in err

    study = optuna.load_study(study_name="interrupted", storage=storage)
    assert [t.state for t in study.trials] == [TrialState.FAIL]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    assert client.get_run(study.trials[0].user_attrs["mlflow_run_id"]).info.status == "KILLED"
    experiment = client.get_experiment_by_name("interrupted")
    parent, = client.search_runs([experiment.experiment_id], "tags.dropout_lab.role = 'study'")
    assert parent.info.status == "KILLED"

    again = subprocess.run([*args[:5], "search.n_trials=2", "train.max_steps=6"], cwd=tmp_path,
                           env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    states = [t.state for t in optuna.load_study(study_name="interrupted", storage=storage).trials]
    assert states == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
