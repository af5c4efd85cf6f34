"""Late dropout: no dropout for the first part of training, then dropout at rate p.

Liu, Xu, Jiang, Hao, Liu, Zhao and Darrell, "Dropout Reduces Underfitting", ICML 2023. The
counterpart of early dropout for models that over-fit: training starts without regularisation and
dropout is switched on at the cutoff (the paper's "late stochastic depth" applies it to the
residual branches). Here p(t) = 0 for steps t < cutoff and p from the cutoff on; ``cutoff`` is a
step or a fraction of the run. It drives the dropout sites (``sites``) or another strategy's rate,
e.g. ``{name: late, p: 0.1, drives: stochastic_depth.p}``.
"""

from __future__ import annotations

from typing import Literal

from framework.registry import register_strategy
from framework.strategies.schedules import CutoffConfig
from framework.strategies.schedules import ScheduleStrategy


class LateConfig(CutoffConfig):
    """Rate 0 until the cutoff step, p after it (late dropout, Liu et al. 2023)."""

    name: Literal["late"] = "late"


@register_strategy("late", config=LateConfig)
class Late(ScheduleStrategy):
    """p(t) = 0 for t < cutoff, else p."""

    config: LateConfig

    def rate(self, step: int, total_steps: int) -> float:
        return 0.0 if step < self.config.cutoff_step(total_steps) else self.config.p
