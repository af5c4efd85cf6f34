"""The model of a confirmation's best configuration, registered in MLflow's model registry.

Every trial logs its model (see :mod:`framework.tracking.records`). When a confirmation ends,
the configuration with the best mean of the study's first objective over the seeds wins (the
baseline competes like any other row), and the model of its best seed becomes a new version of
the registered model named after the study (once: writing the same confirmation's table again,
as each of its processes may, adds no version).
"""

from __future__ import annotations

import math
from typing import Any

from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from framework.tracking import Tracker
from framework.tracking.records import MODEL_URI_ATTR
from framework.tracking.records import register_model


def best_configuration(comparison: Any) -> Any | None:
    """The comparison row with the best mean of the first objective (None if no row has one)."""
    metric, direction = comparison.objectives[0]
    sign = 1.0 if direction == "minimize" else -1.0
    scored = [row for row in comparison.rows if metric in row.summaries
              and math.isfinite(row.summaries[metric].mean)]
    if not scored:
        return None
    return min(scored, key=lambda row: sign * row.summaries[metric].mean)


def best_trial(confirm_study: Any, label: str, direction: str) -> FrozenTrial | None:
    """The complete trial of configuration ``label`` with the best value and a logged model."""
    sign = 1.0 if direction == "minimize" else -1.0
    trials = [t for t in confirm_study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
              if t.params.get("config") == label and MODEL_URI_ATTR in t.user_attrs]
    return min(trials, key=lambda t: (sign * t.values[0], t.number), default=None)


def register_confirmed_best(study_name: str, confirm_study: Any, comparison: Any,
                            tracker: Tracker) -> Any | None:
    """Register the best configuration's model as a new version of model ``study_name``, unless
    the newest version is already that model with the same tags.

    Returns the ``ModelVersion``, or None when no configuration has a trial with a model.
    """
    row = best_configuration(comparison)
    if row is None:
        return None
    metric, direction = comparison.objectives[0]
    trial = best_trial(confirm_study, row.label, direction)
    if trial is None:
        return None
    summary = row.summaries[metric]
    seed = int(trial.params["seed"])
    tags = {"dropout_lab.config": row.label, "dropout_lab.seed": str(seed),
            "dropout_lab.confirm_study": confirm_study.study_name,
            f"dropout_lab.{metric}.mean": f"{summary.mean:.6g}",
            f"dropout_lab.{metric}.seeds": str(summary.n)}
    if row.source_trial is not None:
        tags["dropout_lab.search_trial"] = str(row.source_trial)
    description = (f"{row.label}: {metric} {summary} over {summary.n} seeds; this version is "
                   f"seed {seed} ({metric} {trial.values[0]:.4f}).")
    if (latest := latest_version(tracker, study_name)) is not None and all(
            latest.tags.get(key) == value for key, value in tags.items()):
        return latest  # the same confirmation, written again (e.g. by another of its processes)
    return register_model(tracker, study_name, trial.user_attrs[MODEL_URI_ATTR], tags,
                          description)


def latest_version(tracker: Tracker, name: str) -> Any | None:
    """The newest version of registered model ``name`` (None when there is none)."""
    versions = tracker.client.search_model_versions(f"name = '{name}'")
    return max(versions, key=lambda v: int(v.version), default=None)
