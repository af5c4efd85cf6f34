"""Curriculum Dropout: a dropout rate that rises over training, from 0 towards a final rate.

Morerio, Cavazza, Volpi, Vidal and Murino, "Curriculum Dropout", ICCV 2017. The probability of
keeping a unit follows theta(t) = (1 - theta_bar) * exp(-gamma * t) + theta_bar, so it starts at 1
(no dropout: easy) and decays to theta_bar (hard); the dropout rate is p(t) = 1 - theta(t)
= (1 - theta_bar) * (1 - exp(-gamma * t)). Here ``p_final`` = 1 - theta_bar. The paper picks gamma
relative to the training length; by default gamma = 10 / T for a run of T steps (the choice of
common ports), so p reaches 99.995% of ``p_final`` by the end and about 63% of it at 10% of the run.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field

from framework.registry import register_strategy
from framework.strategies.schedules import ScheduleConfig
from framework.strategies.schedules import ScheduleStrategy


class CurriculumConfig(ScheduleConfig):
    """Dropout rising from 0 to p_final: keep prob (1 - theta_bar) e^(-gamma t) + theta_bar."""

    name: Literal["curriculum"] = "curriculum"
    p_final: float = Field(0.2, ge=0.0, lt=1.0)
    """Rate approached at the end of training, 1 - theta_bar."""
    gamma: float | None = Field(None, gt=0.0)
    """Per-step gamma; default ``run_gamma`` / T for a run of T steps."""
    run_gamma: float = Field(10.0, gt=0.0)
    """gamma * T, used when ``gamma`` is not given (10 in common ports)."""


@register_strategy("curriculum", config=CurriculumConfig)
class Curriculum(ScheduleStrategy):
    """p(t) = 1 - theta(t) = p_final * (1 - exp(-gamma * t))."""

    config: CurriculumConfig

    def gamma(self, total_steps: int) -> float:
        return self.config.gamma or self.config.run_gamma / total_steps

    def keep_probability(self, step: int, total_steps: int) -> float:
        """theta(t) = (1 - theta_bar) * exp(-gamma * t) + theta_bar (Morerio et al. 2017)."""
        theta_bar = 1.0 - self.config.p_final
        return (1.0 - theta_bar) * math.exp(-self.gamma(total_steps) * step) + theta_bar

    def rate(self, step: int, total_steps: int) -> float:
        # 1 - theta(t), written so that it is exactly 0 at t = 0 (1 - theta(0) may round below 0).
        return self.config.p_final * -math.expm1(-self.gamma(total_steps) * step)
