"""Run a study: open (or continue) the Optuna study and optimise until its budget is spent.

``search.n_trials`` is the study's total budget: finished trials (complete or pruned) from
earlier invocations count, so running the same study again continues it. Failed trials (an
exception, a NaN, Ctrl-C) do not use up the budget and are recorded with their reason.
"""

from __future__ import annotations

from dataclasses import dataclass
import datetime
from typing import Any

import optuna
from optuna.trial import TrialState

from framework.config import LoadedSpec
from framework.config.paths import flatten
from framework.tracking import Locations
from framework.tracking import Tracker
from framework.tuning.objective import Objective
from framework.tuning.samplers import make_pruner
from framework.tuning.samplers import make_sampler


FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


@dataclass
class StudyOutcome:
    study: optuna.Study
    experiment_id: str
    parent_run_id: str
    locations: Locations

    def count(self, *states: TrialState) -> int:
        return len(self.study.get_trials(deepcopy=False, states=states))


def make_storage(url: str) -> optuna.storages.BaseStorage:
    """An RDB storage; SQLite waits for locks instead of failing when several processes write."""
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        engine_kwargs["connect_args"] = {"timeout": 60}
    return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)


def open_study(loaded: LoadedSpec, storage: str) -> optuna.Study:
    search = loaded.spec.search
    return optuna.create_study(
        study_name=loaded.spec.name,
        storage=make_storage(storage),
        sampler=make_sampler(search),
        pruner=make_pruner(search, loaded.spec.train.max_steps),
        directions=[o.direction for o in search.objectives],
        load_if_exists=True,
    )


def run_study(loaded: LoadedSpec, locations: Locations, display: Any | None = None
              ) -> StudyOutcome:
    """Optimise ``loaded`` until ``search.n_trials`` trials have finished."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    locations.prepare()
    spec = loaded.spec
    study = open_study(loaded, locations.storage)
    tracker = Tracker(locations)
    experiment_id = tracker.experiment_id(spec.name)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    parent = tracker.start_run(experiment_id, f"{spec.name}-{stamp}",
                               {"dropout_lab.study": spec.name, "dropout_lab.role": "study"})
    tracker.log_params(parent, flatten(spec.model_dump(mode="json")))
    tracker.log_text(parent, loaded.to_yaml(), "study.yaml")
    study.set_user_attr("mlflow_experiment_id", experiment_id)
    study.set_user_attr("objective", spec.search.objectives[0].metric)
    outcome = StudyOutcome(study, experiment_id, parent, locations)
    objective = Objective(loaded, tracker, experiment_id, parent, display)
    status = "FAILED"
    try:
        remaining = spec.search.n_trials - outcome.count(*FINISHED)
        if remaining > 0:
            callbacks = [optuna.study.MaxTrialsCallback(spec.search.n_trials, states=FINISHED)]
            if display is not None:
                callbacks.append(lambda _study, trial: display.trial_finished(trial))
            study.optimize(objective, n_trials=remaining, catch=(Exception,),
                           callbacks=callbacks)
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        _log_best(tracker, parent, outcome)
        tracker.end_run(parent, status)
    return outcome


def _log_best(tracker: Tracker, parent: str, outcome: StudyOutcome) -> None:
    study = outcome.study
    if study._is_multi_objective() or outcome.count(TrialState.COMPLETE) == 0:
        return
    metric = outcome.study.user_attrs["objective"]
    tracker.log_metrics(parent, {f"best/{metric}": study.best_value,
                                 "best/trial": study.best_trial.number}, step=0)
