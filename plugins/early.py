"""Early dropout: dropout at rate p for the first part of training only, then none.

Liu, Xu, Jiang, Hao, Liu, Zhao and Darrell, "Dropout Reduces Underfitting", ICML 2023. Dropout
early in training lowers the variance of mini-batch gradients and aligns them with the whole
data set's gradient; switched off afterwards, it helps models that under-fit (the paper's regime:
large data, small models or short schedules) reach a lower training loss and better test accuracy.
Here p(t) = p for steps t < cutoff and 0 from the cutoff on; ``cutoff`` is a step or a fraction of
the run. Like every schedule it drives the dropout sites (``sites``), or another strategy's rate,
e.g. early stochastic depth: ``{name: early, p: 0.1, drives: stochastic_depth.p}``.
"""

from __future__ import annotations

from typing import Literal

from framework.registry import register_strategy
from framework.strategies.schedules import CutoffConfig
from framework.strategies.schedules import ScheduleStrategy


class EarlyConfig(CutoffConfig):
    """Rate p until the cutoff step, 0 after it (early dropout, Liu et al. 2023)."""

    name: Literal["early"] = "early"


@register_strategy("early", config=EarlyConfig)
class Early(ScheduleStrategy):
    """p(t) = p for t < cutoff, else 0."""

    config: EarlyConfig

    def rate(self, step: int, total_steps: int) -> float:
        return self.config.p if step < self.config.cutoff_step(total_steps) else 0.0
