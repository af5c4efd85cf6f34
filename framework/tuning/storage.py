"""Optuna storages that several worker processes (on one machine or many) can share."""

from __future__ import annotations

from pathlib import Path
import sqlite3
from typing import Any
import warnings

import optuna

from framework.config.sections import SearchSpec
from framework.tracking import Locations


def make_storage(url: str, search: SearchSpec | None = None,
                 locations: Locations | None = None) -> optuna.storages.RDBStorage:
    """An RDB storage; with ``search``, heartbeats mark dead workers' trials failed and retry them.

    SQLite is switched to write-ahead logging and waits up to a minute for a lock, so that
    several local workers never fail with "database is locked".
    """
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite:///"):
        _use_wal(Path(url.removeprefix("sqlite:///")))
        engine_kwargs["connect_args"] = {"timeout": 60}
    kwargs: dict[str, Any] = {}
    if search is not None:
        kwargs = {
            "heartbeat_interval": search.heartbeat_interval,
            "grace_period": search.grace_period or 2 * search.heartbeat_interval,
            "heartbeat_stale_trial_callback": DeadWorkerHandler(search.max_retries, locations),
        }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **kwargs)


def _use_wal(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path, timeout=60) as connection:
        connection.execute("PRAGMA journal_mode=WAL")


class DeadWorkerHandler:
    """Called by Optuna for a trial whose worker stopped sending heartbeats (killed, lost).

    Marks the trial's MLflow run failed with the reason, then queues the trial again with the same
    parameters (``RetryHeartbeatStaleTrialCallback``), up to ``max_retries`` times.
    """

    def __init__(self, max_retries: int, locations: Locations | None):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self.retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retries)
        self.locations = locations

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        run_id = trial.user_attrs.get("mlflow_run_id")
        if run_id and self.locations is not None:
            from framework.tracking import Tracker

            tracker = Tracker(self.locations, timeout=30)
            reason = f"worker {trial.user_attrs.get('worker', '?')} stopped sending heartbeats"
            tracker.set_tags(run_id, {"dropout_lab.state": "failed",
                                      "dropout_lab.fail_reason": reason})
            tracker.end_run(run_id, "FAILED")
        self.retry(study, trial)


