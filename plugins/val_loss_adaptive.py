"""Validation-loss-based dropout: the schedule Dynamic Dropout reports as best overall.

Yan and Shao, "Enhancing Transformer Training Efficiency with Dynamic Dropout", arXiv 2411.03236
(2024). At each evaluation, if the validation loss improved on the best so far by more than
``min_delta``, the model is still learning and the rate is lowered by ``delta`` (not below
``p_min``); otherwise it is over-fitting or stalled and the rate is raised by ``delta`` (not above
``p_max``). The paper does not publish its constants: the defaults here (start 0.2, step 0.02,
bounds [0, 0.3], min_delta 1e-3) are our choice. min_delta > 0 keeps evaluation noise from
counting as an improvement.
"""

from __future__ import annotations

import math
from typing import Any
from typing import Literal

from pydantic import Field
from pydantic import model_validator

from framework.registry import register_strategy
from framework.strategies.base import TrainedModel
from framework.strategies.schedules import ScheduleConfig
from framework.strategies.schedules import ScheduleStrategy


class ValLossAdaptiveConfig(ScheduleConfig):
    """Rate lowered when val loss improves, raised when it does not (Yan & Shao 2024)."""

    name: Literal["val_loss_adaptive"] = "val_loss_adaptive"
    p_start: float = Field(0.2, ge=0.0, lt=1.0)
    """Rate until the first evaluation."""
    delta: float = Field(0.02, gt=0.0, lt=1.0)
    """How much the rate moves at each evaluation."""
    p_min: float = Field(0.0, ge=0.0, lt=1.0)
    """Lowest rate."""
    p_max: float = Field(0.3, ge=0.0, lt=1.0)
    """Highest rate."""
    min_delta: float = Field(1e-3, ge=0.0)
    """Improvement on the best val loss that counts as one (nats)."""
    metric: str = "val_loss"
    """Evaluation metric to follow (lower is better)."""

    @model_validator(mode="after")
    def _check(self) -> ValLossAdaptiveConfig:
        if not self.p_min <= self.p_start <= self.p_max:
            raise ValueError(f"val_loss_adaptive needs p_min <= p_start <= p_max, got "
                             f"{self.p_min}, {self.p_start}, {self.p_max}")
        return self


@register_strategy("val_loss_adaptive", config=ValLossAdaptiveConfig)
class ValLossAdaptive(ScheduleStrategy):
    """Moves the rate by ``delta`` at every evaluation, down on improvement, up otherwise."""

    config: ValLossAdaptiveConfig

    def __init__(self, config: ValLossAdaptiveConfig):
        super().__init__(config)
        self.p = config.p_start
        self.best = math.inf

    def rate(self, step: int, total_steps: int) -> float:
        return self.p

    def on_eval(self, step: int, metrics: dict[str, float]) -> None:
        loss = metrics[self.config.metric]
        if loss < self.best - self.config.min_delta:
            self.p = max(self.config.p_min, self.p - self.config.delta)
            # The best moves only on a counted improvement: a run improving by less than
            # min_delta per evaluation still counts as improving once the gains add up.
            self.best = loss
        else:
            self.p = min(self.config.p_max, self.p + self.config.delta)
        # Round away float drift so that reaching p_min = 0 gives exactly 0 (the op is skipped).
        self.p = round(self.p, 12)
        if hasattr(self, "sites"):
            self._set(self.p)

    def rate_curve(self, trained: TrainedModel) -> tuple[list[int], list[float]]:
        # The rate logged at an evaluation is the one used since the previous evaluation.
        key = self.rate_keys[0] if self.rate_keys else ""
        steps: list[int] = []
        rates: list[float] = []
        previous = 0
        for entry in trained.history:
            if key in entry:
                steps += [previous, int(entry["step"])]
                rates += [entry[key], entry[key]]
            previous = int(entry["step"])
        return steps, rates

    def state_dict(self) -> dict[str, Any]:
        return {"p": self.p, "best": self.best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.p, self.best = float(state["p"]), float(state["best"])
