"""Live progress of a run: trials done of the budget, the running trial's step and val loss."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn
from rich.progress import MofNCompleteColumn
from rich.progress import Progress
from rich.progress import TextColumn
from rich.progress import TimeElapsedColumn


class RunDisplay:
    """Implements the tuning layer's ``Display`` with rich progress bars.

    The bars appear once the study is open (``resume``) or a trial starts, so that a run refused
    before it starts (a changed spec, a missing device) prints only its error.
    """

    def __init__(self, spec: Any):
        self.spec = spec
        self.console = Console(highlight=False)
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
            console=self.console, transient=False,
        )
        self.trials_task = self.progress.add_task(
            f"study {spec.name}", total=spec.search.n_trials, status=""
        )
        self.trial_task: int | None = None
        self.started = False

    def __enter__(self) -> RunDisplay:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.started:
            self.progress.stop()

    def _start(self) -> None:
        if not self.started:
            self.progress.start()
            self.started = True

    def resume(self, finished: int, n_trials: int) -> None:
        """Count the trials earlier invocations finished towards the budget."""
        self._start()
        self.progress.update(self.trials_task, completed=finished, total=n_trials)

    def trial_started(self, number: int, params: dict[str, Any]) -> None:
        self._start()
        if self.trial_task is not None:
            self.progress.remove_task(self.trial_task)
        self.trial_task = self.progress.add_task(
            f"  trial {number}", total=self.spec.train.max_steps, status=""
        )

    def step(self, step: int, total_steps: int) -> None:
        # Refreshing costs far less than a step, but not nothing: update every 10 steps.
        if (step + 1) % 10 == 0:
            self.progress.update(self.trial_task, completed=step + 1)

    def evaluated(self, step: int, metrics: dict[str, float]) -> None:
        self.progress.update(self.trial_task, completed=step,
                             status=f"val_loss {metrics['val_loss']:.4f}")

    def trial_finished(self, trial: Any) -> None:
        from optuna.trial import TrialState

        self.console.print(describe(trial), markup=False, soft_wrap=True)
        if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
            self.progress.update(self.trials_task, advance=1)


def describe(trial: Any) -> str:
    """``trial 3 complete: 2.1648  (dropout.0.p=0.002, train.lr=0.007)``"""
    from optuna.trial import TrialState

    if trial.state == TrialState.COMPLETE:
        detail = ", ".join(f"{v:.4f}" for v in trial.values)
    elif trial.state == TrialState.FAIL:
        detail = trial.user_attrs.get("fail_reason", "")
    else:
        detail = f"at step {trial.last_step}"
    line = f"trial {trial.number} {trial.state.name.lower()}: {detail}"
    if trial.params:  # none for a fixed configuration (an arm without a space, a confirmation)
        line += "  (" + ", ".join(f"{k}={_short(v)}" for k, v in trial.params.items()) + ")"
    if "warning" in trial.user_attrs:
        line += f"\n  warning: {trial.user_attrs['warning']}"
    return line


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class LineDisplay:
    """One line per finished trial, for worker processes and non-interactive logs."""

    def __init__(self) -> None:
        import os

        self.console = Console(highlight=False)
        self.pid = os.getpid()

    def __enter__(self) -> LineDisplay:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def resume(self, finished: int, n_trials: int) -> None:
        if finished:
            self.console.print(f"continuing the study: {finished} of {n_trials} trials "
                               "already finished", markup=False)

    def trial_started(self, number: int, params: dict[str, Any]) -> None: ...

    def step(self, step: int, total_steps: int) -> None: ...

    def evaluated(self, step: int, metrics: dict[str, float]) -> None: ...

    def trial_finished(self, trial: Any) -> None:
        self.console.print(f"[worker {self.pid}] {describe(trial)}", markup=False,
                           soft_wrap=True)
