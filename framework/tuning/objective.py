"""The Optuna objective: one trial = sample the space, train, log everything to a child run."""

from __future__ import annotations

import copy
from pathlib import Path
import tempfile
from typing import Any
from typing import Protocol

import optuna
import yaml

from framework.config import LoadedSpec
from framework.config import validate
from framework.config.paths import flatten
from framework.tracking import Tracker
from framework.training.run import run_training
from framework.tuning.space import suggest


class Display(Protocol):
    """What a run shows a person (the CLI's progress view implements it)."""

    def trial_started(self, number: int, params: dict[str, Any]) -> None: ...
    def step(self, step: int, total_steps: int) -> None: ...
    def evaluated(self, step: int, metrics: dict[str, float]) -> None: ...


class QuietDisplay:
    def trial_started(self, number: int, params: dict[str, Any]) -> None: ...
    def step(self, step: int, total_steps: int) -> None: ...
    def evaluated(self, step: int, metrics: dict[str, float]) -> None: ...


class Objective:
    """Callable for ``study.optimize``; trials nest under ``parent_run_id`` in MLflow."""

    def __init__(self, loaded: LoadedSpec, tracker: Tracker, experiment_id: str,
                 parent_run_id: str, display: Display | None = None):
        self.loaded = loaded
        self.tracker = tracker
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self.display = display or QuietDisplay()

    def __call__(self, trial: optuna.Trial) -> float | list[float]:
        raw = copy.deepcopy(self.loaded.raw)
        suggest(trial, self.loaded.spec.search.space, raw)
        run_id = self.tracker.start_run(
            self.experiment_id, f"trial-{trial.number}",
            {"dropout_lab.study": self.loaded.spec.name,
             "dropout_lab.trial": str(trial.number)},
            parent_run_id=self.parent_run_id,
        )
        trial.set_user_attr("mlflow_run_id", run_id)
        self.display.trial_started(trial.number, trial.params)
        status = "FAILED"
        try:
            spec = validate(raw, self.loaded.source)
            values = self._train(trial, spec, run_id)
            status = "FINISHED"
            return values
        except optuna.TrialPruned:
            status = "KILLED"
            self.tracker.set_tags(run_id, {"dropout_lab.state": "pruned"})
            raise
        except BaseException as exc:
            reason = f"{type(exc).__name__}: {exc}"
            trial.set_user_attr("fail_reason", reason)
            self.tracker.set_tags(run_id, {"dropout_lab.state": "failed",
                                           "dropout_lab.fail_reason": reason[:5000]})
            if isinstance(exc, KeyboardInterrupt):
                status = "KILLED"
            raise
        finally:
            self.tracker.end_run(run_id, status)

    def _train(self, trial: optuna.Trial, spec: Any, run_id: str) -> float | list[float]:
        dumped = spec.model_dump(mode="json")
        self.tracker.log_params(
            run_id, {**flatten(dumped), **{f"search/{k}": v for k, v in trial.params.items()}}
        )
        self.tracker.log_text(run_id, yaml.safe_dump(dumped, sort_keys=False), "spec.yaml")
        observer = _TrialObserver(trial, spec, self.tracker, run_id, self.display)
        with tempfile.TemporaryDirectory(prefix="dropout-lab-") as tmp:
            result = run_training(spec, Path(tmp), observer)
            self.tracker.log_artifacts(run_id, tmp)
        self.tracker.log_metrics(run_id, {f"final/{k}": v for k, v in result.final.items()},
                                 step=result.history[-1]["step"])
        for key, value in result.final.items():
            trial.set_user_attr(key, value)
        values = [result.final[o.metric] for o in spec.search.objectives]
        return values[0] if len(values) == 1 else values


class _TrialObserver:
    """Training-loop observer: logs metrics, reports to Optuna, prunes, updates the display."""

    def __init__(self, trial: optuna.Trial, spec: Any, tracker: Tracker, run_id: str,
                 display: Display):
        self.trial, self.tracker, self.run_id, self.display = trial, tracker, run_id, display
        objectives = spec.search.objectives
        # Optuna prunes single-objective studies only.
        self.reported = objectives[0].metric if len(objectives) == 1 else None
        self.max_steps = spec.train.max_steps

    def on_step(self, step: int, total_steps: int) -> None:
        self.display.step(step, total_steps)

    def on_eval(self, step: int, metrics: dict[str, float]) -> None:
        self.tracker.log_metrics(self.run_id, metrics, step)
        self.display.evaluated(step, metrics)
        if self.reported in metrics:
            self.trial.report(metrics[self.reported], step)
            # Pruning after the last step would only throw away a finished trial.
            if step < self.max_steps and self.trial.should_prune():
                raise optuna.TrialPruned(f"pruned at step {step}")
