"""Close the MLflow runs of invocations that ended without closing them.

A ``run`` process that is killed (SIGKILL, a lost machine) or that gave up on an unreachable
tracking store leaves its parent run, and maybe trial runs, RUNNING. Optuna's heartbeats find
such a process's trial; nothing finds its parent run. So every invocation, before its first
trial, looks at the study's RUNNING parent runs and closes those whose process is gone: KILLED,
with the reason in the tag ``dropout_lab.fail_reason``, and their RUNNING trial runs with them.

A parent run's process is gone when Optuna failed one of that process's trials for lack of
heartbeats (on any machine), or when it ran on this machine and its process id is not alive. A
parent with a running trial (one whose heartbeat is fresh) has a live worker and is left alone,
as is a parent whose process runs on another machine and shows no such sign.
"""

from __future__ import annotations

import os
import socket

import optuna
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from framework.tracking import Tracker
from framework.tuning.storage import DEAD_WORKER


OWNER_TAG = "dropout_lab.owner"
"""Tag of a parent run: ``host:pid`` of the process that started it (see ``worker_id``)."""
REASON_TAG = "dropout_lab.fail_reason"


def close_abandoned_runs(study: optuna.Study, tracker: Tracker, experiment_id: str) -> list[str]:
    """End the study's parent runs (and their open trial runs) whose process is gone.

    Call after Optuna's stale-trial check, so that a dead worker's trial no longer counts as
    running. Returns the ids of the parent runs closed.
    """
    trials = study.get_trials(deepcopy=False)
    live_runs = {t.user_attrs.get("mlflow_run_id") for t in trials
                 if t.state == TrialState.RUNNING}
    closed = []
    for parent in tracker.search_runs(
            experiment_id, "tags.dropout_lab.role = 'study' and attributes.status = 'RUNNING'"):
        parent_id = parent.info.run_id
        children = tracker.search_runs(
            experiment_id,
            f"tags.mlflow.parentRunId = '{parent_id}' and attributes.status = 'RUNNING'")
        if any(child.info.run_id in live_runs for child in children):
            continue
        why = owner_gone(parent.data.tags.get(OWNER_TAG), trials)
        if why is None:
            continue
        for child in children:
            _close_trial_run(tracker, child.info.run_id, trials, why)
        tracker.set_tags(parent_id, {"dropout_lab.state": "abandoned", REASON_TAG: why})
        tracker.end_run(parent_id, "KILLED")
        closed.append(parent_id)
    return closed


def owner_gone(owner: str | None, trials: list[FrozenTrial]) -> str | None:
    """Why the process ``owner`` (``host:pid``) is known to be gone, or None if it may be alive."""
    if not owner:
        return None  # a run from before owners were recorded: nothing is known
    if any(t.state == TrialState.FAIL and t.user_attrs.get("worker") == owner
           and DEAD_WORKER in str(t.user_attrs.get("fail_reason", "")) for t in trials):
        return f"process {owner} died: Optuna found its trial without heartbeats"
    host, _, pid = owner.rpartition(":")
    if host == socket.gethostname() and pid.isdigit() and not _alive(int(pid)):
        return f"process {owner} ended without ending this run (killed?)"
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


def _close_trial_run(tracker: Tracker, run_id: str, trials: list[FrozenTrial],
                     parent_reason: str) -> None:
    """End a trial run as its Optuna trial ended; KILLED, with the parent's reason, when no
    finished trial has that run."""
    trial = next((t for t in trials if t.user_attrs.get("mlflow_run_id") == run_id
                  and t.state.is_finished()), None)
    if trial is not None and trial.state == TrialState.COMPLETE:
        tracker.end_run(run_id, "FINISHED")
        return
    if trial is not None and trial.state == TrialState.FAIL:
        reason = trial.user_attrs.get("fail_reason") or parent_reason
        tracker.set_tags(run_id, {"dropout_lab.state": "failed", REASON_TAG: reason})
        tracker.end_run(run_id, "FAILED")
        return
    if trial is not None:  # pruned
        tracker.set_tags(run_id, {"dropout_lab.state": "pruned"})
    else:
        tracker.set_tags(run_id, {"dropout_lab.state": "abandoned", REASON_TAG: parent_reason})
    tracker.end_run(run_id, "KILLED")
