"""Run a study: open (or continue) the Optuna study and optimise until its budget is spent.

``search.n_trials`` is the study's total budget across invocations and workers: finished trials
(complete or pruned) count, and no worker starts a trial once finished + running trials reach
it. Failed trials (an exception, a NaN, Ctrl-C, a killed worker) do not use up the budget and are
recorded with their reason; a killed worker's trial is retried and resumes from its checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
import datetime
import os
import time
from typing import Any
import warnings

import optuna
from optuna.trial import TrialState

from framework.config import LoadedSpec
from framework.config.paths import flatten
from framework.tracking import Locations
from framework.tracking import Tracker
from framework.tuning.objective import Objective
from framework.tuning.samplers import make_pruner
from framework.tuning.samplers import make_sampler
from framework.tuning.storage import make_storage


FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
PARENT_RUN_ATTR = "mlflow_parent_run_id"


@dataclass
class StudyOutcome:
    study: optuna.Study
    experiment_id: str
    parent_run_id: str
    locations: Locations
    worker_errors: list[int] = field(default_factory=list)
    """Exit codes of local worker processes that failed (e.g. -9 for a killed one)."""

    def count(self, *states: TrialState) -> int:
        return len(self.study.get_trials(deepcopy=False, states=states))

    def budget_met(self, n_trials: int) -> bool:
        return self.count(*FINISHED) >= n_trials


def open_study(loaded: LoadedSpec, locations: Locations, seed_offset: int = 0) -> optuna.Study:
    """The study, created on first use; ``seed_offset`` gives each worker its own sampler seed
    (workers with one seed would propose the same points)."""
    search = loaded.spec.search
    return optuna.create_study(
        study_name=loaded.spec.name,
        storage=make_storage(locations.storage, search, locations),
        sampler=make_sampler(search, seed_offset),
        pruner=make_pruner(search, loaded.spec.train.max_steps),
        directions=[o.direction for o in search.objectives],
        load_if_exists=True,
    )


def next_move(study: optuna.Study, n_trials: int) -> str:
    """``"run"`` a trial, ``"wait"`` for others' last trials, or ``"stop"``.

    A worker waits rather than stops while other workers hold the last trials of the budget:
    if one of them dies, its trial is failed by heartbeat and queued again, and someone must run
    it. Dead workers' trials are looked for first.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    trials = study.get_trials(deepcopy=False)
    finished = sum(t.state in FINISHED for t in trials)
    if finished >= n_trials:
        return "stop"
    if any(t.state == TrialState.WAITING for t in trials):
        return "run"
    running = sum(t.state == TrialState.RUNNING for t in trials)
    return "wait" if finished + running >= n_trials else "run"


def run_study(loaded: LoadedSpec, locations: Locations, display: Any | None = None,
              workers: int = 1, plugin_paths: tuple[str, ...] = ()) -> StudyOutcome:
    """Optimise ``loaded`` until ``search.n_trials`` trials have finished.

    With ``workers > 1`` that many worker processes share the study (see ``workers.py``); all
    their trials nest under this invocation's parent run in MLflow.
    """
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    locations.prepare()
    spec = loaded.spec
    study = open_study(loaded, locations)
    tracker = Tracker(locations, timeout=spec.search.tracking_timeout)
    experiment_id = tracker.experiment_id(spec.name)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    parent = tracker.start_run(experiment_id, f"{spec.name}-{stamp}",
                               {"dropout_lab.study": spec.name, "dropout_lab.role": "study"})
    tracker.log_params(parent, flatten(spec.model_dump(mode="json")))
    tracker.log_text(parent, loaded.to_yaml(), "study.yaml")
    study.set_user_attr("mlflow_experiment_id", experiment_id)
    study.set_user_attr(PARENT_RUN_ATTR, parent)
    study.set_user_attr("objective", spec.search.objectives[0].metric)
    outcome = StudyOutcome(study, experiment_id, parent, locations)
    status = "FAILED"
    try:
        if workers > 1:
            from framework.tuning.workers import run_workers

            outcome.worker_errors = run_workers(loaded, locations, parent, workers, plugin_paths)
        else:
            run_worker(loaded, locations, parent, display)
        met = outcome.budget_met(spec.search.n_trials)
        status = "FINISHED" if met or not outcome.worker_errors else "FAILED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        _log_best(tracker, parent, outcome)
        tracker.end_run(parent, status)
    return outcome


def run_worker(loaded: LoadedSpec, locations: Locations, parent_run_id: str,
               display: Any | None = None, threads: int | None = None,
               seed_offset: int = 0) -> None:
    """Run trials of the study in this process until the budget is spent.

    A worker also stops after as many failed trials as the budget (a spec that cannot train
    would otherwise fail forever, since failures do not use up the budget).
    """
    if threads and not loaded.spec.train.threads:
        import torch

        torch.set_num_threads(threads)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    search = loaded.spec.search
    study = open_study(loaded, locations, seed_offset)
    tracker = Tracker(locations, timeout=search.tracking_timeout)
    objective = Objective(loaded, tracker, tracker.experiment_id(loaded.spec.name),
                          parent_run_id, display)
    callbacks = [] if display is None else [lambda _study, trial: display.trial_finished(trial)]
    failures = 0
    while failures < max(3, search.n_trials):
        move = next_move(study, search.n_trials)
        if move == "stop":
            break
        if move == "wait":
            time.sleep(min(5.0, search.heartbeat_interval))
            continue
        objective.budget_reached = False
        study.optimize(objective, n_trials=1, catch=(Exception,), callbacks=callbacks)
        failures += objective.last_failed and not objective.budget_reached


def worker_id() -> str:
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


def _log_best(tracker: Tracker, parent: str, outcome: StudyOutcome) -> None:
    study = outcome.study
    if study._is_multi_objective() or outcome.count(TrialState.COMPLETE) == 0:
        return
    metric = outcome.study.user_attrs["objective"]
    tracker.log_metrics(parent, {f"best/{metric}": study.best_value,
                                 "best/trial": study.best_trial.number}, step=0)
