"""Exponential decay of the dropout rate, one of the three schedules of Dynamic Dropout.

Yan and Shao, "Enhancing Transformer Training Efficiency with Dynamic Dropout", arXiv 2411.03236
(2024). Here p(t) = max(p_end, p_start * exp(-rate * t)). The paper does not publish its decay
constant; by default ``rate`` = 4 / T for a run of T steps, so that the rate falls to
p_start * e^-4 (under 2% of p_start) by the end whatever the run length.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field

from framework.registry import register_strategy
from framework.strategies.schedules import ScheduleConfig
from framework.strategies.schedules import ScheduleStrategy


class ExpDecayConfig(ScheduleConfig):
    """Dropout rate decaying exponentially from p_start, floored at p_end (Yan & Shao 2024)."""

    name: Literal["exp_decay"] = "exp_decay"
    p_start: float = Field(0.2, ge=0.0, lt=1.0)
    """Rate at step 0."""
    p_end: float = Field(0.0, ge=0.0, lt=1.0)
    """Floor of the rate."""
    rate: float | None = Field(None, gt=0.0)
    """Decay per step; default ``run_decay`` / T for a run of T steps."""
    run_decay: float = Field(4.0, gt=0.0)
    """Decay over the whole run when ``rate`` is not given (rate = run_decay / T)."""


@register_strategy("exp_decay", config=ExpDecayConfig)
class ExpDecay(ScheduleStrategy):
    """p(t) = max(p_end, p_start * exp(-rate * t))."""

    config: ExpDecayConfig

    def rate(self, step: int, total_steps: int) -> float:
        decay = self.config.rate or self.config.run_decay / total_steps
        return max(self.config.p_end, self.config.p_start * math.exp(-decay * step))
