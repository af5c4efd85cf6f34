"""Linear decay of the dropout rate, one of the three schedules of Dynamic Dropout.

Yan and Shao, "Enhancing Transformer Training Efficiency with Dynamic Dropout", arXiv 2411.03236
(2024): the rate of every dropout site of a GPT falls during training, so that the model is
regularised early and fits freely late. Here
p(t) = p_start + (p_end - p_start) * min(t / (D - 1), 1) for steps t = 0, 1, ..., with
D = ``decay_steps`` or the run length, so the span's last step has p_end. At p = 0 the sites skip
the dropout op entirely.
"""

from __future__ import annotations

from typing import Literal

from framework.registry import register_strategy
from framework.strategies.schedules import DecayConfig
from framework.strategies.schedules import ScheduleStrategy


class LinearDecayConfig(DecayConfig):
    """Dropout rate moving linearly from p_start to p_end (Yan & Shao 2024)."""

    name: Literal["linear_decay"] = "linear_decay"


@register_strategy("linear_decay", config=LinearDecayConfig)
class LinearDecay(ScheduleStrategy):
    """p(t) = p_start + (p_end - p_start) * min(t / (D - 1), 1)."""

    config: LinearDecayConfig

    def rate(self, step: int, total_steps: int) -> float:
        progress = self.config.progress(step, total_steps)
        return self.config.p_start + (self.config.p_end - self.config.p_start) * progress
