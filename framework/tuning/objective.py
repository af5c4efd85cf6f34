"""The Optuna objective: one trial = sample the space, train, log everything to a child run."""

from __future__ import annotations

import copy
from pathlib import Path
import socket
import tempfile
from typing import Any
from typing import Protocol
import warnings

import optuna
from optuna.trial import TrialState
import yaml

from framework.config import LoadedSpec
from framework.config import validate
from framework.config.paths import flatten
from framework.errors import SpecError
from framework.tracking import Tracker
from framework.tracking.interrupt import deferred_interrupt
from framework.tracking.records import SystemMetrics
from framework.tracking.records import drop_checkpoint
from framework.tracking.records import log_dataset
from framework.tracking.records import log_model
from framework.tracking.redact import redact
from framework.training.device import cpu_name
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


class BudgetReached(optuna.exceptions.OptunaError):
    """Other workers started the last trials of the budget first; this one does not run."""


class Objective:
    """Callable for ``study.optimize``; trials nest under ``parent_run_id`` in MLflow."""

    def __init__(self, loaded: LoadedSpec, tracker: Tracker, experiment_id: str,
                 parent_run_id: str, display: Display | None = None, score_test: bool = False,
                 run_name: str | None = None):
        """``score_test``: score the test split after training (a confirmation's trials only:
        a search's sampler and pruner must never see it). ``run_name``: the MLflow run's name
        (default ``trial-<n>``; a confirmation's trial numbers repeat the search's in the same
        experiment, so it names its runs apart)."""
        self.loaded = loaded
        self.run_name = run_name
        self.score_test = score_test
        self.tracker = tracker
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self.display = display or QuietDisplay()
        self.budget_reached = False
        self.last_failed = False

    def __call__(self, trial: optuna.Trial) -> float | list[float]:
        self.last_failed = True
        self._check_budget(trial)
        from framework.tuning.study import PARENT_RUN_ATTR
        from framework.tuning.study import worker_id

        trial.set_user_attr("worker", worker_id())
        trial.set_user_attr("cpu", cpu_name())  # tables say when speeds come from mixed CPUs
        # Which invocation ran it: a run none of whose trials finished exits non-zero.
        trial.set_user_attr(PARENT_RUN_ATTR, self.parent_run_id)
        values = self._run(trial)
        self.last_failed = False
        return values

    def _check_budget(self, trial: optuna.Trial) -> None:
        """Decide by trial number, so that racing workers agree on who gets the last slots."""
        counted = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
        ahead = [t for t in trial.study.get_trials(deepcopy=False, states=counted)
                 if t.number < trial.number]
        if len(ahead) >= self.loaded.spec.search.n_trials:
            self.budget_reached = True
            trial.set_user_attr("fail_reason", "not run: the budget was reached by other workers")
            raise BudgetReached("budget reached")

    def _run(self, trial: optuna.Trial) -> float | list[float]:
        raw = copy.deepcopy(self.loaded.raw)
        suggest(trial, self.loaded.spec.search.space, raw)
        try:
            run_id = self.tracker.start_run(
                self.experiment_id, self.run_name or f"trial-{trial.number}",
                {"dropout_lab.study": self.loaded.spec.name,
                 "dropout_lab.trial": str(trial.number),
                 # Speeds (tokens/s, train_time) are comparable only on the same kind of CPU.
                 "dropout_lab.host": socket.gethostname(),
                 "dropout_lab.cpu": trial.user_attrs["cpu"]},
                parent_run_id=self.parent_run_id,
            )
        except Exception as exc:  # e.g. TrackingUnavailable: there is no run to tag
            trial.set_user_attr("fail_reason", redact(f"{type(exc).__name__}: {exc}"))
            raise
        trial.set_user_attr("mlflow_run_id", run_id)
        self.display.trial_started(trial.number, trial.params)
        status = "FAILED"
        finished = False  # complete or pruned: its training state is no longer needed
        self.retried_runs: list[str] = []  # runs of the dead attempts this trial retries
        system = SystemMetrics.start(self.tracker, run_id)
        try:
            spec = validate(raw, self.loaded.source)
            values = self._train(trial, spec, run_id)
            status, finished = "FINISHED", True
            return values
        except optuna.TrialPruned:
            status, finished = "KILLED", True
            self.tracker.set_tags(run_id, {"dropout_lab.state": "pruned"})
            raise
        except optuna.exceptions.UpdateFinishedTrialError:
            # Another worker failed the trial (no heartbeat within the grace period), tagged this
            # run with why and queued a retry: nothing is left to record here.
            raise
        except BaseException as exc:
            reason = redact(f"{type(exc).__name__}: {exc}")
            trial.set_user_attr("fail_reason", reason)
            self.tracker.set_tags(run_id, {"dropout_lab.state": "failed",
                                           "dropout_lab.fail_reason": reason[:5000]})
            if isinstance(exc, KeyboardInterrupt):
                status = "KILLED"
            raise
        finally:
            system.stop()
            self.tracker.end_run(run_id, status)
            if finished and not self.loaded.spec.train.keep_last:
                # The dead attempts' states too: the trial they were saved for is over.
                for finished_run in (run_id, *self.retried_runs):
                    drop_checkpoint(self.tracker, finished_run)

    def _train(self, trial: optuna.Trial, spec: Any, run_id: str) -> float | list[float]:
        dumped = spec.model_dump(mode="json")
        self.tracker.log_params(
            run_id, {**flatten(dumped), **{f"search/{k}": v for k, v in trial.params.items()}}
        )
        self.tracker.log_text(run_id, yaml.safe_dump(dumped, sort_keys=False), "spec.yaml")
        log_dataset(self.tracker, run_id, spec.data)
        observer = _TrialObserver(trial, spec, self.tracker, run_id, self.display)
        with tempfile.TemporaryDirectory(prefix="dropout-lab-") as tmp:
            checkpoint = resume = None
            if spec.train.checkpoints:
                checkpoint = _Checkpointer(self.tracker, run_id, Path(tmp) / "checkpoint")
                resume = self._resume_state(trial, Path(tmp) / "resume")
            if resume is not None:
                trial.set_user_attr("resumed_from_step", resume["step"])
                for record in resume["history"]:
                    record = dict(record)
                    self.tracker.log_metrics(run_id, record, step=int(record.pop("step")))
            artifacts = Path(tmp) / "artifacts"
            artifacts.mkdir()
            result = run_training(spec, artifacts, observer, checkpoint=checkpoint, resume=resume,
                                  score_test=self.score_test)
            self.tracker.log_artifacts(run_id, str(artifacts))
        log_model(self.tracker, trial, run_id, self.experiment_id, result.model, result.best_step)
        self.tracker.log_metrics(run_id, {f"final/{k}": v for k, v in result.final.items()},
                                 step=result.history[-1]["step"])
        for key, value in result.final.items():
            trial.set_user_attr(key, value)
        if result.warnings:
            warning = "; ".join(result.warnings)
            trial.set_user_attr("warning", warning)
            self.tracker.set_tags(run_id, {"dropout_lab.warning": warning})
        values = [result.final[o.metric] for o in spec.search.objectives]
        return values[0] if len(values) == 1 else values


    def _resume_state(self, trial: optuna.Trial, folder: Path) -> dict[str, Any] | None:
        """The last checkpoint of the dead trial this one retries, if it left one.

        A checkpoint that does not load as plain data (``weights_only``) is never unpickled: the
        trial starts from step 0, with a warning and its ``resume_refused`` attribute saying why.
        """
        retry = optuna.storages.RetryHeartbeatStaleTrialCallback
        study_trials = trial.study.get_trials(deepcopy=False)
        frozen = next(t for t in study_trials if t.number == trial.number)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            history = retry.retry_history(frozen)
        if not history:
            return None
        from framework.training.checkpoint import load_training_state

        runs = [study_trials[number].user_attrs.get("mlflow_run_id") for number in history]
        self.retried_runs = [run_id for run_id in runs if run_id is not None]
        for run_id in reversed(self.retried_runs):  # the latest attempt got furthest
            try:
                path = self.tracker.client.download_artifacts(run_id, "checkpoint/last.pt",
                                                              str(folder))
            except Exception:  # that attempt died before its first checkpoint
                continue
            try:
                return load_training_state(path)
            except SpecError as error:  # never unpickled: the trial starts over
                refused = f"not resumed from {error}; it starts from step 0"
                trial.set_user_attr("resume_refused", refused)
                warnings.warn(f"trial {trial.number} {refused}", stacklevel=2)
                return None
        return None


class _Checkpointer:
    """Saves the training state after each evaluation and uploads it to the trial's run."""

    def __init__(self, tracker: Tracker, run_id: str, folder: Path):
        folder.mkdir(parents=True)
        self.tracker, self.run_id, self.path = tracker, run_id, folder / "last.pt"

    def __call__(self, state: dict[str, Any]) -> None:
        from framework.training.checkpoint import save_training_state

        partial = self.path.with_suffix(".tmp")
        save_training_state(state, partial)
        partial.replace(self.path)  # an upload never sees a half-written file
        self.tracker.log_artifact_later(self.run_id, str(self.path), "checkpoint")


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
            with deferred_interrupt():  # a write to the Optuna store
                self.trial.report(metrics[self.reported], step)
                # Pruning after the last step would only throw away a finished trial.
                prune = step < self.max_steps and self.trial.should_prune()
            if prune:
                raise optuna.TrialPruned(f"pruned at step {step}")
