"""Standard dropout at a fixed rate: the baseline every other strategy is compared with.

Srivastava, Hinton, Krizhevsky, Sutskever and Salakhutdinov, "Dropout: A Simple Way to Prevent
Neural Networks from Overfitting", JMLR 15 (2014). Inverted dropout: in training each unit is
zeroed with probability ``p`` and the kept ones are scaled by 1/(1-p); evaluation is the identity.
Attention dropout inside fused SDPA follows ``p`` too (its ``dropout_p`` argument).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from framework.registry import register_strategy
from framework.strategies.base import RateConfig
from framework.strategies.base import RateStrategy


class StandardConfig(RateConfig):
    """Fixed-rate dropout on the targeted site kinds (Srivastava et al. 2014)."""

    name: Literal["standard"] = "standard"
    p: float = Field(0.1, ge=0.0, lt=1.0)
    """Probability of zeroing a unit during training."""


@register_strategy("standard", config=StandardConfig)
class Standard(RateStrategy):
    """The same rate at every step."""

    config: StandardConfig

    def rate(self, step: int, total_steps: int) -> float:
        return self.config.p
