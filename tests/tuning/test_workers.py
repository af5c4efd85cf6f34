"""Many workers, one study: real processes, real databases, a real SIGKILL."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
import signal
import subprocess
import sys
import time
import uuid

from mlflow import MlflowClient
import optuna
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
import pytest

from tests.conftest import TINY_STUDY
from tests.conftest import write_study


POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"  # the README's form: psycopg 3
MARIADB = "mysql+pymysql://root@127.0.0.1:3306/test"


def reachable(url: str) -> str | None:
    """None if the database answers, else why not (for the skip reason)."""
    import sqlalchemy

    try:
        with sqlalchemy.create_engine(url, connect_args={"connect_timeout": 3}).connect():
            return None
    except Exception as exc:
        return f"{url.split('@')[-1]} not reachable: {type(exc).__name__}"


def run_cli(args: list[str], cwd: Path, extra_env: dict[str, str] | None = None
            ) -> subprocess.Popen:
    env = {**os.environ, "COLUMNS": "200", **(extra_env or {})}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.Popen([sys.executable, "-m", "framework.cli", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def check_finished_study(storage: str, tracking_uri: str, name: str, budget: int,
                         killed: tuple[int, ...] = ()) -> None:
    """Exactly the budget complete, no duplicate configs, one finished child run per trial."""
    study = optuna.load_study(study_name=name, storage=storage)
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == budget
    assert len({tuple(sorted(t.params.items())) for t in complete}) == budget
    for trial in study.get_trials(states=(TrialState.FAIL,)):
        if trial.number not in killed:
            assert trial.user_attrs["fail_reason"].startswith("not run: the budget"), trial
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(name)
    parents = client.search_runs([experiment.experiment_id], "tags.dropout_lab.role = 'study'")
    assert len(parents) == 1
    children = client.search_runs(
        [experiment.experiment_id], f"tags.mlflow.parentRunId = '{parents[0].info.run_id}'")
    finished = {r.info.run_id for r in children if r.info.status == "FINISHED"}
    assert finished == {t.user_attrs["mlflow_run_id"] for t in complete}


@pytest.mark.slow
def test_four_local_workers_on_sqlite_spend_exactly_the_budget(tmp_path: Path) -> None:
    study = write_study(tmp_path, TINY_STUDY.format(name="parallel"))
    process = run_cli(["run", str(study), "search.n_trials=8", "--workers", "4"], cwd=tmp_path)
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    assert "database is locked" not in out + err
    home = tmp_path / "mlruns"
    check_finished_study(f"sqlite:///{home / 'optuna.db'}", f"sqlite:///{home / 'mlflow.db'}",
                         "parallel", 8)


@pytest.mark.slow
@pytest.mark.db
@pytest.mark.parametrize("url", [POSTGRES, MARIADB], ids=["postgresql", "mariadb"])
def test_workers_share_a_study_on_a_database_server(tmp_path: Path, url: str) -> None:
    reason = reachable(url)
    if reason:
        pytest.skip(reason)
    name = f"db-{uuid.uuid4().hex[:8]}"
    study = write_study(tmp_path, TINY_STUDY.format(name=name))
    try:
        process = run_cli(["run", str(study), "search.n_trials=4", "--workers", "2",
                           "--storage", url], cwd=tmp_path)
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
        check_finished_study(url, f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}", name, 4)
    finally:
        with contextlib.suppress(KeyError):
            optuna.delete_study(study_name=name, storage=url)


@pytest.mark.slow
@pytest.mark.db
def test_a_password_in_the_storage_url_never_reaches_mlflow_or_the_output(tmp_path: Path) -> None:
    url = POSTGRES.replace("postgres@", "postgres:s3cret-pw@")  # trust auth ignores it
    reason = reachable(url)
    if reason:
        pytest.skip(reason)
    name = f"secret-{uuid.uuid4().hex[:8]}"
    study = write_study(tmp_path, TINY_STUDY.format(name=name) + "description: ${oc.env:DB}\n")
    try:
        process = run_cli(["run", str(study), "search.n_trials=1", "--storage", url], cwd=tmp_path,
                          extra_env={"DB": url})
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
        assert "s3cret-pw" not in out + err
        assert "postgres:***@" in out
        client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
        experiment = client.get_experiment_by_name(name)
        for run in client.search_runs([experiment.experiment_id]):
            data = run.data
            assert "s3cret-pw" not in repr(data.params) + repr(data.tags)
            for artifact in ("study.yaml", "spec.yaml"):
                try:
                    text = Path(client.download_artifacts(run.info.run_id, artifact,
                                                          str(tmp_path))).read_text()
                except Exception:
                    continue
                assert "s3cret-pw" not in text and "postgres:***@" in text
    finally:
        with contextlib.suppress(KeyError):
            optuna.delete_study(study_name=name, storage=url.replace(":s3cret-pw", ""))


@pytest.mark.slow
def test_a_killed_worker_is_retried_elsewhere_and_resumes_from_its_checkpoint(
    tmp_path: Path,
) -> None:
    study_file = write_study(tmp_path, TINY_STUDY.format(name="killed"))
    overrides = ["search.n_trials=3", "search.heartbeat_interval=1", "search.grace_period=3",
                 "train.max_steps=400", "train.eval_every=40", "model.n_embd=32"]
    process = run_cli(["run", str(study_file), *overrides, "--workers", "2"], cwd=tmp_path)
    storage = f"sqlite:///{tmp_path / 'mlruns' / 'optuna.db'}"
    victim = None
    deadline = time.monotonic() + 300
    while victim is None and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.3)
        try:
            study = optuna.load_study(study_name="killed", storage=storage)
        except Exception:
            continue
        for trial in study.get_trials(states=(TrialState.RUNNING,)):
            # Kill after the second checkpoint, so that there is something to resume from.
            if len(trial.intermediate_values) >= 2 and "worker" in trial.user_attrs:
                victim = trial
                break
    if victim is None:
        process.kill()
        out, err = process.communicate(timeout=60)
        raise AssertionError(f"no trial reached a checkpoint (exit {process.returncode}):\n"
                             f"{out[-2000:]}\n{err[-2000:]}")
    os.kill(int(victim.user_attrs["worker"].split(":")[1]), signal.SIGKILL)
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    assert "workers exited with an error" in err
    assert "Downloading artifacts" not in out + err, "MLflow's progress bar stays off"

    study = optuna.load_study(study_name="killed", storage=storage)
    killed = study.trials[victim.number]
    assert killed.state == TrialState.FAIL
    retries = [t for t in study.trials if t.system_attrs.get("failed_trial") == victim.number]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    assert retries[0].params == victim.params
    assert retries[0].user_attrs["resumed_from_step"] >= 80
    check_finished_study(storage, f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}", "killed", 3,
                         killed=(victim.number,))
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    dead_run = client.get_run(killed.user_attrs["mlflow_run_id"])
    assert dead_run.info.status == "FAILED"
    assert "heartbeats" in dead_run.data.tags["dropout_lab.fail_reason"]
    resumed_history = client.get_metric_history(retries[0].user_attrs["mlflow_run_id"], "val_loss")
    assert [m.step for m in resumed_history] == list(range(40, 401, 40))


TWO_ARMS = TINY_STUDY.format(name="armed").replace("  n_trials: 2", "  n_trials: 1") + (
    "arms:\n  low: {dropout: [{name: standard, p: 0.05}], search: {n_trials: 1, space: {}}}\n"
    "  high: {dropout: [{name: standard, p: 0.3}], search: {n_trials: 1, space: {}}}\n")
"""Two arms of one trial each."""


def arms_ran_at_once(storage: str) -> tuple[FrozenTrial, FrozenTrial]:
    """The one trial of each arm of ``TWO_ARMS``, checked complete and run at the same time."""
    low, high = (optuna.load_study(study_name=f"armed.{arm}", storage=storage).trials
                 for arm in ("low", "high"))
    assert [t.state for t in low + high] == [TrialState.COMPLETE] * 2
    assert low[0].datetime_start < high[0].datetime_complete
    assert high[0].datetime_start < low[0].datetime_complete
    return low[0], high[0]


@pytest.mark.slow
def test_two_invocations_of_an_arms_study_run_different_arms_at_once(tmp_path: Path) -> None:
    study_file = write_study(tmp_path, TWO_ARMS)
    args = ["run", str(study_file), "train.max_steps=2000", "train.eval_every=500",
            "train.threads=1"]
    storage = f"sqlite:///{tmp_path / 'mlruns' / 'optuna.db'}"
    first = run_cli(args, cwd=tmp_path)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and first.poll() is None:  # until it has taken arm `low`
        time.sleep(0.2)
        if not (tmp_path / "mlruns" / "optuna.db").exists():
            continue
        # Not made yet (KeyError), or this poll collided with the run creating the tables: the
        # next poll sees them.
        with contextlib.suppress(Exception):
            if optuna.load_study(study_name="armed.low", storage=storage).trials:
                break
    second = run_cli(args, cwd=tmp_path)  # must not wait for `low`
    for process in (first, second):
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
    arms_ran_at_once(storage)  # each arm once, the two at the same time, one per invocation


@pytest.mark.slow
def test_workers_share_the_arms_of_a_study_and_then_its_confirmation(tmp_path: Path) -> None:
    study_file = write_study(tmp_path, TWO_ARMS)
    settings = [str(study_file), "train.max_steps=1500", "train.eval_every=500"]
    storage = f"sqlite:///{tmp_path / 'mlruns' / 'optuna.db'}"
    run = run_cli(["run", *settings, "--workers", "2"], cwd=tmp_path)
    out, err = run.communicate(timeout=300)
    assert run.returncode == 0, err
    assert out.count("ran 2 arms") == 1  # said once, by the process that started the copies
    # The copies start together, so both may go for the first arm: the one that finds its only
    # trial taken goes on to the next arm instead of waiting for it. One arm each, at once:
    low, high = arms_ran_at_once(storage)
    assert low.user_attrs["worker"] != high.user_attrs["worker"]

    confirm = run_cli(["confirm", *settings, "--seeds", "2", "--workers", "2"], cwd=tmp_path)
    out, err = confirm.communicate(timeout=300)
    assert confirm.returncode == 0, err
    trials = optuna.load_study(study_name="armed-confirm", storage=storage).trials
    pairs = [(t.params["config"], t.params["seed"]) for t in trials]
    # Every pair queued once (by the starter) and trained once, shared by the two copies.
    assert len(pairs) == len(set(pairs)) >= 4
    assert {t.state for t in trials} == {TrialState.COMPLETE}
    assert len({t.user_attrs["worker"] for t in trials}) == 2
    tables = list((tmp_path / "mlruns" / "reports").glob("armed-confirm*.md"))
    assert len(tables) == 1 and "low/top1" in tables[0].read_text()
