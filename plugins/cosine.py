"""Cosine decay of the dropout rate: a smooth variant of the Dynamic Dropout schedules.

Yan and Shao, "Enhancing Transformer Training Efficiency with Dynamic Dropout", arXiv 2411.03236
(2024) decay the rate linearly or exponentially; this schedule uses the half-cosine shape of
SGDR's learning-rate annealing (Loshchilov & Hutter, ICLR 2017) instead:
p(t) = p_end + (p_start - p_end) * (1 + cos(pi * min(t / (D - 1), 1))) / 2.
"""

from __future__ import annotations

import math
from typing import Literal

from framework.registry import register_strategy
from framework.strategies.schedules import DecayConfig
from framework.strategies.schedules import ScheduleStrategy


class CosineConfig(DecayConfig):
    """Dropout rate following a half cosine from p_start to p_end."""

    name: Literal["cosine"] = "cosine"


@register_strategy("cosine", config=CosineConfig)
class Cosine(ScheduleStrategy):
    """p(t) = p_end + (p_start - p_end) * (1 + cos(pi * min(t / (D - 1), 1))) / 2."""

    config: CosineConfig

    def rate(self, step: int, total_steps: int) -> float:
        weight = 0.5 * (1.0 + math.cos(math.pi * self.config.progress(step, total_steps)))
        return self.config.p_end + (self.config.p_start - self.config.p_end) * weight
