"""Dropout-rate schedules: the shared base of the rate-over-training strategies.

Dynamic Dropout (Yan & Shao, "Enhancing Transformer Training Efficiency with Dynamic Dropout",
arXiv 2411.03236, 2024) changes the dropout rate of a GPT during training; Curriculum Dropout
(Morerio et al., ICCV 2017) raises it instead. Each schedule is a :class:`ScheduleStrategy` that
says what the rate is at a step; this base records the run length and, after training, plots the
rate over steps next to the validation-loss curve (``rate_schedule_<name>.png``, logged to
MLflow).

This module must not import torch or matplotlib at module level: plugin schemas load without them.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from framework.strategies.base import RateConfig
from framework.strategies.base import RateStrategy
from framework.strategies.base import TrainedModel


class ScheduleConfig(RateConfig):
    """Base of the schedules' configs: the targeted site kinds and when a rate counts as 0."""

    off_below: float = Field(0.0, ge=0.0, lt=1.0)
    """Rates below this are applied as exactly 0, so the sites skip the dropout op (a decay that
    only approaches 0, like the exponential one, would otherwise never make training faster)."""


class DecayConfig(ScheduleConfig):
    """Base of schedules that move the rate from ``p_start`` to ``p_end`` over a span of steps."""

    p_start: float = Field(0.2, ge=0.0, lt=1.0)
    """Rate at step 0."""
    p_end: float = Field(0.0, ge=0.0, lt=1.0)
    """Rate reached after ``decay_steps`` (or at the end of the run) and kept afterwards."""
    decay_steps: int | None = Field(None, ge=1)
    """Steps over which the rate moves; default: the whole run."""

    def progress(self, step: int, total_steps: int) -> float:
        """How far through the span ``step`` is, from 0 to 1."""
        return min(step / (self.decay_steps or total_steps), 1.0)


class ScheduleStrategy(RateStrategy):
    """A :class:`RateStrategy` whose rate follows a schedule; plots it after training."""

    config: ScheduleConfig
    total_steps: int = 0

    def on_step(self, step: int, total_steps: int) -> None:
        self.total_steps = total_steps
        super().on_step(step, total_steps)

    def _set(self, p: float) -> None:
        super()._set(self._applied(p))

    def _applied(self, p: float) -> float:
        """The rate the sites get: ``p``, or 0 below ``off_below``."""
        return 0.0 if p < self.config.off_below else p

    @property
    def plot_name(self) -> str:
        """The plot's file name; named after the strategy so that two stacked schedules coexist."""
        return f"rate_schedule_{self.name}.png"

    def rate_curve(self, trained: TrainedModel) -> tuple[list[int], list[float]]:
        """Steps and the rate the sites had at them, for the plot.

        Deterministic schedules are evaluated at every step; a schedule driven by the run's own
        metrics overrides this to read the logged rates from ``trained.history``.
        """
        steps = list(range(self.total_steps))
        return steps, [self._applied(self.rate(s, self.total_steps)) for s in steps]

    def after_training(self, trained: TrainedModel) -> dict[str, float]:
        if trained.history:
            plot_schedule(trained.artifact_dir / self.plot_name, self.name,
                          *self.rate_curve(trained), trained.history)
        return {}


def plot_schedule(path: Path, title: str, steps: list[int], rates: list[float],
                  history: list[dict[str, float]]) -> Path:
    """Write the rate over steps (left axis) and the train/val loss curves (right axis)."""
    import matplotlib

    matplotlib.use("Agg")  # no display on training machines; must precede pyplot's import
    import matplotlib.pyplot as plt

    fig, rate_ax = plt.subplots(figsize=(7, 4), dpi=100)
    rate_ax.plot(steps, rates, color="tab:blue", label="dropout rate")
    rate_ax.set_xlabel("step")
    rate_ax.set_ylabel("dropout rate", color="tab:blue")
    rate_ax.set_ylim(bottom=0.0, top=max([*rates, 0.05]) * 1.1)
    loss_ax = rate_ax.twinx()
    eval_steps = [h["step"] for h in history]
    loss_ax.plot(eval_steps, [h["val_loss"] for h in history], "o-", color="tab:red",
                 label="val loss")
    if all("train_loss" in h for h in history):
        loss_ax.plot(eval_steps, [h["train_loss"] for h in history], ".--", color="tab:orange",
                     label="train loss")
    loss_ax.set_ylabel("loss (nats per token)", color="tab:red")
    handles = rate_ax.get_legend_handles_labels()[0] + loss_ax.get_legend_handles_labels()[0]
    rate_ax.legend(handles=handles, loc="upper right")
    rate_ax.set_title(f"{title}: dropout rate and loss over training")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
