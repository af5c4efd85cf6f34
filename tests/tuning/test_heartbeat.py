"""Heartbeats: a trial failed by another worker, and a database that drops a heartbeat."""

from __future__ import annotations

from collections.abc import Callable
import logging
from pathlib import Path
import threading

import optuna
from optuna.storages._heartbeat import HeartbeatThread
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
import pytest

from framework.config.sections import SearchSpec
from framework.tuning.storage import HeartbeatTolerantStorage
from framework.tuning.storage import make_storage
from framework.tuning.study import run_trial


TAKEN_OVER = "was marked failed by another worker (no heartbeat within the grace period)"


def url_in(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'db' / 'optuna.db'}"


def new_storage(tmp_path: Path) -> optuna.storages.RDBStorage:
    return make_storage(url_in(tmp_path), SearchSpec(heartbeat_interval=1, max_retries=0))


def new_study(tmp_path: Path) -> optuna.Study:
    return optuna.create_study(study_name="beats", storage=new_storage(tmp_path))


def warnings_in(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def failed_elsewhere(url: str, then_report: bool) -> Callable[[optuna.Trial], float]:
    """An objective whose trial another worker fails meanwhile, through its own storage, as its
    ``fail_stale_trials`` does to a trial it finds without heartbeats."""

    def objective(trial: optuna.Trial) -> float:
        other_worker = optuna.storages.RDBStorage(url)
        other_worker.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        other_worker.engine.dispose()
        if then_report:
            trial.report(1.0, step=1)  # raises UpdateFinishedTrialError: the trial is over
        return 1.0

    return objective


@pytest.mark.parametrize("then_report", [False, True], ids=["returns", "raises"])
def test_a_trial_failed_by_another_worker_is_discarded_with_one_line(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, then_report: bool) -> None:
    study = new_study(tmp_path)
    told: list[FrozenTrial] = []
    objective = failed_elsewhere(url_in(tmp_path), then_report)
    with caplog.at_level(logging.WARNING):
        run_trial(study, objective, [lambda _study, trial: told.append(trial)])
    [trial] = study.get_trials()
    assert trial.state == TrialState.FAIL and trial.values is None
    assert warnings_in(caplog) == [
        f"trial 0 {TAKEN_OVER}; its result is discarded"]
    assert told == []  # nothing was finished here
    run_trial(study, lambda trial: 2.0, [])  # the worker goes on
    assert study.get_trials()[1].state == TrialState.COMPLETE


def test_trials_end_as_their_objective_ends(tmp_path: Path) -> None:
    study = new_study(tmp_path)
    told: list[FrozenTrial] = []

    def prune(trial: optuna.Trial) -> float:
        raise optuna.TrialPruned()

    def fail(trial: optuna.Trial) -> float:
        raise RuntimeError("boom")

    for objective in (lambda trial: 0.5, prune, fail):
        run_trial(study, objective, [lambda _study, trial: told.append(trial)])
    assert [t.state for t in told] == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL]
    assert told[0].value == 0.5


def test_ctrl_c_fails_the_trial_and_is_raised_again(tmp_path: Path) -> None:
    study = new_study(tmp_path)

    def interrupted(trial: optuna.Trial) -> float:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_trial(study, interrupted, [])
    assert study.get_trials()[0].state == TrialState.FAIL


def test_a_lost_database_does_not_end_the_heartbeat_thread(
        tmp_path: Path, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The database file goes away for a while (as a server does when it restarts)."""
    storage = new_storage(tmp_path)
    assert isinstance(storage, HeartbeatTolerantStorage)
    study = optuna.create_study(study_name="beats", storage=storage)
    trial_id = storage.create_new_trial(study._study_id)  # RUNNING, as a worker's trial
    escaped: list[threading.ExceptHookArgs] = []
    monkeypatch.setattr(threading, "excepthook", escaped.append)
    (tmp_path / "db").rename(tmp_path / "away")  # its folder too: no connection opens
    storage.engine.dispose()
    beats = HeartbeatThread(trial_id, storage)
    with caplog.at_level(logging.WARNING):
        beats.start()
        beats.join()
        storage.record_heartbeat(trial_id)  # still away: no second warning
    assert escaped == []
    [warning] = warnings_in(caplog)
    assert warning == (f"heartbeat of trial id {trial_id} not recorded (OperationalError); "
                       "trying again every 1 s")
    (tmp_path / "away").rename(tmp_path / "db")
    storage.engine.dispose()
    storage.record_heartbeat(trial_id)
    assert storage._get_stale_trial_ids(study._study_id) == []  # beating again
    assert not storage._heartbeat_failing
