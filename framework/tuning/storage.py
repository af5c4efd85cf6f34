"""Optuna storages that several worker processes (on one machine or many) can share."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
import sqlite3
from typing import Any
import warnings

import optuna
import sqlalchemy.exc

from framework.config.sections import SearchSpec
from framework.tracking import Locations
from framework.tracking.store import create_once


DEAD_WORKER = "died: no heartbeats"
"""In the ``fail_reason`` of every trial whose worker stopped sending heartbeats."""

_log = logging.getLogger(__name__)


class HeartbeatTolerantStorage(optuna.storages.RDBStorage):
    """An RDB storage whose heartbeats outlive a dropped database connection.

    Optuna records a running trial's heartbeats from a thread of its own, which dies with a
    traceback on the first database error (a server restart, a network blip): the trial then
    falls silent and is declared dead though its worker lives. That thread is Optuna's, so the
    handling sits in the one storage method it calls: an ``excepthook`` filter could only end
    the thread more quietly, whereas a heartbeat that does not raise keeps the thread beating.
    A failed heartbeat is tried again at once (the pool has dropped the broken connection by
    then); if that fails too, one warning line is logged per outage and the next interval tries
    again. A missed beat is harmless while the grace period spans several intervals.
    """

    _heartbeat_failing = False

    def record_heartbeat(self, trial_id: int) -> None:
        for attempt in (1, 2):
            try:
                super().record_heartbeat(trial_id)
            except (optuna.exceptions.StorageInternalError, sqlalchemy.exc.SQLAlchemyError) as exc:
                if attempt == 2 and not self._heartbeat_failing:
                    self._heartbeat_failing = True
                    cause = exc.__cause__ or exc
                    _log.warning("heartbeat of trial id %d not recorded (%s); trying again "
                                 "every %d s", trial_id, type(cause).__name__,
                                 self.heartbeat_interval)
            else:
                self._heartbeat_failing = False
                return


def make_storage(url: str, search: SearchSpec | None = None,
                 locations: Locations | None = None) -> optuna.storages.RDBStorage:
    """An RDB storage; with ``search``, heartbeats mark dead workers' trials failed and retry them.

    SQLite is switched to write-ahead logging and waits up to a minute for a lock, so that
    several local workers never fail with "database is locked". Opening a new storage creates
    its tables, which another process may be creating at the same moment: every open goes
    through :func:`~framework.tracking.store.create_once` (a lock file for SQLite, retries).
    """
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite:///"):
        _use_wal(Path(url.removeprefix("sqlite:///")))
        engine_kwargs["connect_args"] = {"timeout": 60}
    kwargs: dict[str, Any] = {}
    if search is not None:
        grace_period = search.stale_after
        kwargs = {
            "heartbeat_interval": search.heartbeat_interval,
            "grace_period": grace_period,
            "heartbeat_stale_trial_callback": DeadWorkerHandler(search.max_retries, locations,
                                                                grace_period),
        }

    def open_storage(url: str) -> optuna.storages.RDBStorage:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return HeartbeatTolerantStorage(url, engine_kwargs=engine_kwargs, **kwargs)

    return create_once(url, open_storage)


def load_if_exists(name: str, url: str) -> optuna.Study | None:
    """The study ``name`` in ``url``, or None; an absent SQLite file is not created."""
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        return None
    try:
        return optuna.load_study(study_name=name, storage=make_storage(url))
    except KeyError:
        return None


def _use_wal(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path, timeout=60) as connection:
        connection.execute("PRAGMA journal_mode=WAL")


def fail_stale_trials(study: optuna.Study) -> None:
    """Optuna's ``fail_stale_trials``, recording first why each such trial fails.

    Optuna only sets the state of a trial whose worker stopped sending heartbeats, and a failed
    trial takes no more attributes: its ``fail_reason`` is written while it is still RUNNING.
    """
    # Optuna's own function reads the same private attribute: the storage is not public.
    handler = getattr(study._storage, "get_heartbeat_stale_trial_callback", lambda: None)()
    if isinstance(handler, DeadWorkerHandler):
        handler.record_reasons(study)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


class DeadWorkerHandler:
    """Called by Optuna for a trial whose worker stopped sending heartbeats (killed, lost).

    Marks the trial's MLflow run failed with the reason, then queues the trial again with the same
    parameters (``RetryHeartbeatStaleTrialCallback``), up to ``max_retries`` times.
    """

    def __init__(self, max_retries: int, locations: Locations | None, grace_period: int):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self.retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retries)
        self.locations = locations
        self.grace_period = grace_period

    def record_reasons(self, study: optuna.Study) -> None:
        """Set ``fail_reason`` on the trials that Optuna is about to fail for lack of heartbeat."""
        storage = study._storage
        # The stale trials as Optuna's fail_stale_trials finds them (no public equivalent).
        for trial_id in storage._get_stale_trial_ids(storage.get_study_id_from_name(
                study.study_name)):
            worker = storage.get_trial(trial_id).user_attrs.get("worker", "?")
            with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
                storage.set_trial_user_attr(
                    trial_id, "fail_reason",
                    f"worker {worker} {DEAD_WORKER} for {self.grace_period} s")

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        reason = trial.user_attrs.get(
            "fail_reason", f"worker {trial.user_attrs.get('worker', '?')} {DEAD_WORKER}")
        # The retry starts afresh: it must not carry the dead attempt's reason.
        trial.user_attrs.pop("fail_reason", None)
        self.retry(study, trial)
        run_id = trial.user_attrs.get("mlflow_run_id")
        if run_id and self.locations is not None:
            from framework.tracking import Tracker

            tracker = Tracker(self.locations, timeout=30)
            tracker.set_tags(run_id, {"dropout_lab.state": "failed",
                                      "dropout_lab.fail_reason": reason})
            tracker.end_run(run_id, "FAILED")


