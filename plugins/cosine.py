"""Cosine decay of the dropout rate: a smooth variant of the Dynamic Dropout schedules.

Yan and Shao, "Enhancing Transformer Training Efficiency with Dynamic Dropout", arXiv 2411.03236
(2024) decay the rate linearly or exponentially; this schedule uses the half-cosine shape of
SGDR's learning-rate annealing (Loshchilov & Hutter, ICLR 2017) instead:
p(t) = p_end + (p_start - p_end) * (1 + cos(pi * min(t / D, 1))) / 2.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field

from framework.registry import register_strategy
from framework.strategies.schedules import ScheduleConfig
from framework.strategies.schedules import ScheduleStrategy


class CosineConfig(ScheduleConfig):
    """Dropout rate following a half cosine from p_start to p_end."""

    name: Literal["cosine"] = "cosine"
    p_start: float = Field(0.2, ge=0.0, lt=1.0)
    """Rate at step 0."""
    p_end: float = Field(0.0, ge=0.0, lt=1.0)
    """Rate reached after ``decay_steps`` (or at the end of the run) and kept afterwards."""
    decay_steps: int | None = Field(None, ge=1)
    """Steps over which the rate moves; default: the whole run."""


@register_strategy("cosine", config=CosineConfig)
class Cosine(ScheduleStrategy):
    """p(t) = p_end + (p_start - p_end) * (1 + cos(pi * min(t / D, 1))) / 2."""

    config: CosineConfig

    def rate(self, step: int, total_steps: int) -> float:
        progress = min(step / (self.config.decay_steps or total_steps), 1.0)
        weight = 0.5 * (1.0 + math.cos(math.pi * progress))
        return self.config.p_end + (self.config.p_start - self.config.p_end) * weight
