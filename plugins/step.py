"""Step schedule: a piecewise-constant dropout rate that changes at given milestones.

The discrete counterpart of the decaying schedules of Dynamic Dropout (Yan & Shao, "Enhancing
Transformer Training Efficiency with Dynamic Dropout", arXiv 2411.03236, 2024), shaped like the
multi-step learning-rate schedule: p(t) = values[i], where i is the number of milestones <= t.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic import model_validator

from framework.registry import register_strategy
from framework.strategies.schedules import ScheduleConfig
from framework.strategies.schedules import ScheduleStrategy


class StepConfig(ScheduleConfig):
    """Piecewise-constant dropout rate, changing at given milestone steps."""

    name: Literal["step"] = "step"
    milestones: list[int] = Field(default_factory=lambda: [500, 1000, 1500])
    """Steps at which the rate changes, strictly increasing and positive."""
    values: list[float] = Field(default_factory=lambda: [0.2, 0.15, 0.1, 0.05], min_length=1)
    """The rates, one more than the milestones: before the first milestone, after each one."""

    @model_validator(mode="after")
    def _check(self) -> StepConfig:
        if len(self.values) != len(self.milestones) + 1:
            raise ValueError(f"step: {len(self.milestones)} milestones need "
                             f"{len(self.milestones) + 1} values, got {len(self.values)}")
        if any(m < 1 for m in self.milestones) or any(
                b <= a for a, b in zip(self.milestones, self.milestones[1:], strict=False)):
            raise ValueError(f"step: milestones must be positive and strictly increasing, "
                             f"got {self.milestones}")
        if any(not 0.0 <= v < 1.0 for v in self.values):
            raise ValueError(f"step: every value must be in [0, 1), got {self.values}")
        return self


@register_strategy("step", config=StepConfig)
class Step(ScheduleStrategy):
    """p(t) = values[number of milestones <= t]."""

    config: StepConfig

    def rate(self, step: int, total_steps: int) -> float:
        passed = sum(step >= m for m in self.config.milestones)
        return self.config.values[passed]
