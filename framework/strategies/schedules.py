"""Dropout-rate schedules: the shared base of the rate-over-training strategies.

Dynamic Dropout (Yan & Shao, "Enhancing Transformer Training Efficiency with Dynamic Dropout",
arXiv 2411.03236, 2024) changes the dropout rate of a GPT during training; Curriculum Dropout
(Morerio et al., ICCV 2017) raises it instead; early and late dropout (Liu et al., ICML 2023)
switch it off or on at a cutoff. Each schedule is a :class:`ScheduleStrategy` that says what the
rate is at a step; this base records the run length and, after training, plots the rate over steps
next to the validation-loss curve (``rate_schedule_<name>.png``, logged to MLflow).

What a schedule drives is part of its config (``drives``): by default the rate of the dropout
sites of the kinds in ``sites``; or, with ``drives: <strategy>.<rate>``, a rate of another strategy
of the same trial (``stochastic_depth.p``, ``layerdrop.p``), which that strategy exposes through
``rates()`` / ``set_rate()``. So every schedule drives any strategy's rate without that strategy
re-implementing schedules.

This module must not import torch or matplotlib at module level: plugin schemas load without them.
"""

from __future__ import annotations

import math
from pathlib import Path
import re
from typing import Any

from pydantic import Field
from pydantic import field_validator
from pydantic import model_validator

from framework.contract import StrategyNeeds
from framework.strategies.base import DropoutStrategy
from framework.strategies.base import RateConfig
from framework.strategies.base import RateStrategy
from framework.strategies.base import TrainedModel


SITES = "sites"
DRIVEN_RATE = re.compile(r"[A-Za-z_]\w*\.[A-Za-z_]\w*")


class ScheduleConfig(RateConfig):
    """Base of the schedules' configs: what they drive and when a rate counts as 0."""

    off_below: float = Field(0.0, ge=0.0, lt=1.0)
    """Rates below this are applied as exactly 0, so the sites skip the dropout op (a decay that
    only approaches 0, like the exponential one, would otherwise never make training faster)."""
    drives: str = SITES
    """What the schedule sets: ``sites`` (the rate of the dropout sites of the kinds in
    ``sites``), or ``<strategy>.<rate>``, a rate of another strategy of the trial, e.g.
    ``stochastic_depth.p`` or ``layerdrop.p``."""

    @field_validator("drives")
    @classmethod
    def _drives_form(cls, value: str) -> str:
        if value != SITES and not DRIVEN_RATE.fullmatch(value):
            raise ValueError(f"drives must be `sites` or `<strategy>.<rate>` (e.g. "
                             f"stochastic_depth.p), got {value!r}")
        return value

    @model_validator(mode="after")
    def _sites_only_when_driving_sites(self) -> ScheduleConfig:
        if self.drives != SITES and "sites" in self.model_fields_set:
            raise ValueError(f"`sites` applies to `drives: sites`; this schedule drives "
                             f"{self.drives} and sets no site rate")
        return self

    def claimed_kinds(self) -> frozenset[str]:
        return super().claimed_kinds() if self.drives == SITES else frozenset()

    def needs(self) -> StrategyNeeds:
        if self.drives == SITES:
            return super().needs()
        return StrategyNeeds(drives=self.drives)  # it drops nothing itself


class DecayConfig(ScheduleConfig):
    """Base of schedules that move the rate from ``p_start`` to ``p_end`` over a span of steps."""

    p_start: float = Field(0.2, ge=0.0, lt=1.0)
    """Rate at step 0."""
    p_end: float = Field(0.0, ge=0.0, lt=1.0)
    """Rate of the last step of the span (``decay_steps``, or the whole run), kept afterwards."""
    decay_steps: int | None = Field(None, ge=1)
    """Steps over which the rate moves; default: the whole run."""

    def progress(self, step: int, total_steps: int) -> float:
        """How far through the span ``step`` is: 0 at step 0, 1 at the span's last step.

        Steps are 0-based, so a span of D steps ends at step D - 1: that step gets ``p_end``
        (a decay to 0 then reaches the op-free path within the run).
        """
        span = self.decay_steps or total_steps
        return min(step / max(span - 1, 1), 1.0)


class ScheduleStrategy(RateStrategy):
    """A :class:`RateStrategy` whose rate follows a schedule; plots it after training.

    It sets its sites' rate, or the rate of the strategy it drives (:meth:`drive`).
    """

    config: ScheduleConfig
    total_steps: int = 0
    driven: tuple[DropoutStrategy, str] | None = None
    """The strategy and the name of its rate that this schedule sets (``drives``), if any."""

    def drive(self, target: DropoutStrategy, rate: str) -> None:
        """Set ``target``'s rate ``rate`` instead of site rates (the trial connects this)."""
        self.driven = (target, rate)

    def on_step(self, step: int, total_steps: int) -> None:
        self.total_steps = total_steps
        super().on_step(step, total_steps)

    def _set(self, p: float) -> None:
        if self.config.drives == SITES:
            super()._set(self._applied(p))
            return
        if self.driven is None:
            raise RuntimeError(f"{self.name!r} drives {self.config.drives} but was not connected "
                               "to it: attach it through the trial's StrategyStack")
        self.current = float(self._applied(p))
        target, rate = self.driven
        target.set_rate(rate, self.current)

    @property
    def rate_keys(self) -> list[str]:
        """The ``rate/...`` metrics it logs: one per site kind, or the rate it drives."""
        if self.config.drives != SITES:
            return [f"rate/{self.config.drives}"]
        return [f"rate/{kind}" for kind in self.kinds]

    def log_values(self) -> dict[str, float]:
        return {key: self.current for key in self.rate_keys}

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


class CutoffConfig(ScheduleConfig):
    """Base of early and late dropout: rate ``p`` on one side of a cutoff step, 0 on the other."""

    p: float = Field(0.1, ge=0.0, lt=1.0)
    """The rate while dropout is on."""
    cutoff: int | float = 0.2
    """Where the rate switches: a step (an integer >= 1) or a fraction of the run (a float in
    (0, 1); the step is the fraction times the run length, rounded half up)."""

    @field_validator("cutoff", mode="before")
    @classmethod
    def _cutoff_form(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("cutoff must be a step or a fraction of the run, not a boolean")
        return value

    @field_validator("cutoff")
    @classmethod
    def _cutoff_range(cls, value: int | float) -> int | float:
        if isinstance(value, int) and value < 1:
            raise ValueError(f"cutoff as a step must be at least 1, got {value}")
        if isinstance(value, float) and not 0.0 < value < 1.0:
            raise ValueError(f"cutoff as a fraction of the run must be in (0, 1), got {value} "
                             "(give a step as an integer)")
        return value

    def cutoff_step(self, total_steps: int) -> int:
        """The first step on the cutoff's far side (steps are 0-based)."""
        if isinstance(self.cutoff, int):
            return self.cutoff
        return math.floor(self.cutoff * total_steps + 0.5)


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
