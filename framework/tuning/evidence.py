"""A confirmation study's evidence: its runs' metrics from Optuna, per-example scores from MLflow.

:func:`collect` turns the confirmation's complete trials into an
:class:`~framework.reporting.evidence.Evidence`, which the comparison table and the verdicts are
computed from (and which ``confirm --export`` writes for a results page).
"""

from __future__ import annotations

from pathlib import Path
import tempfile

import numpy as np
import optuna
from optuna.trial import TrialState

from framework.config.claims import Claim
from framework.reporting.comparison import machines
from framework.reporting.evidence import Evidence
from framework.reporting.evidence import record_from_json
from framework.tracking import Tracker
from framework.training.run import EXAMPLES_FILE
from framework.tuning.confirm import CONFIGS_ATTR
from framework.tuning.confirm import results


def collect(study: optuna.Study, claims: list[Claim], tracker: Tracker | None = None
            ) -> Evidence:
    """The evidence of confirmation ``study`` for ``claims``; with ``tracker``, each complete
    run's per-example test scores too (downloaded from its MLflow run)."""
    attrs = study.user_attrs
    metrics = [(o["metric"], o["direction"]) for o in attrs.get("objectives", [])]
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    settings = [(title, text) for title, text in attrs.get("settings", [])]
    if cpu := machines(complete):
        settings.append(("CPU", cpu))
    evidence = Evidence(
        study=attrs.get("source_study", study.study_name),
        seeds=[int(s) for s in attrs.get("seeds", [])],
        baseline=attrs.get("baseline"), metrics=metrics,
        configurations=[record_from_json(c) for c in attrs.get(CONFIGS_ATTR, [])],
        claims=list(claims), values=results(study, [m for m, _ in metrics]),
        settings=settings, empty_arms=list(attrs.get("empty_arms", [])))
    if tracker is not None:
        with tempfile.TemporaryDirectory(prefix="dropout-lab-evidence-") as tmp:
            for trial in complete:
                scores = _examples(tracker, trial.user_attrs.get("mlflow_run_id"),
                                   Path(tmp) / str(trial.number))
                if scores:
                    key = (trial.params["config"], int(trial.params["seed"]))
                    evidence.examples[key] = scores
    return evidence


def _examples(tracker: Tracker, run_id: str | None, folder: Path) -> dict[str, np.ndarray]:
    """The run's per-example test scores; empty when it left none (a run from before they were
    recorded, or a dataset without a test split)."""
    if run_id is None:
        return {}
    folder.mkdir(parents=True)
    try:
        path = tracker.client.download_artifacts(run_id, EXAMPLES_FILE, str(folder))
    except Exception:  # MLflow raises several kinds for a missing artifact
        return {}
    with np.load(path) as arrays:
        return {name: arrays[name] for name in arrays.files}
