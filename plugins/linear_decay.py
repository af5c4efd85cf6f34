"""Linear decay of the dropout rate, one of the three schedules of Dynamic Dropout.

Yan and Shao, "Enhancing Transformer Training Efficiency with Dynamic Dropout", arXiv 2411.03236
(2024): the rate of every dropout site of a GPT falls during training, so that the model is
regularised early and fits freely late. Here p(t) = p_start + (p_end - p_start) * min(t / D, 1),
with D = ``decay_steps`` or the run length. At p = 0 the sites skip the dropout op entirely.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from framework.registry import register_strategy
from framework.strategies.schedules import ScheduleConfig
from framework.strategies.schedules import ScheduleStrategy


class LinearDecayConfig(ScheduleConfig):
    """Dropout rate moving linearly from p_start to p_end (Yan & Shao 2024)."""

    name: Literal["linear_decay"] = "linear_decay"
    p_start: float = Field(0.2, ge=0.0, lt=1.0)
    """Rate at step 0."""
    p_end: float = Field(0.0, ge=0.0, lt=1.0)
    """Rate reached after ``decay_steps`` (or at the end of the run) and kept afterwards."""
    decay_steps: int | None = Field(None, ge=1)
    """Steps over which the rate moves; default: the whole run."""


@register_strategy("linear_decay", config=LinearDecayConfig)
class LinearDecay(ScheduleStrategy):
    """p(t) = p_start + (p_end - p_start) * min(t / D, 1)."""

    config: LinearDecayConfig

    def rate(self, step: int, total_steps: int) -> float:
        span = self.config.decay_steps or total_steps
        progress = min(step / span, 1.0)
        return self.config.p_start + (self.config.p_end - self.config.p_start) * progress
