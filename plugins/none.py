"""No dropout: every site of the targeted kinds stays at rate 0 (the op is skipped entirely).

Useful as the "without" arm of a comparison, e.g. as one option of a ``choice`` in the space.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from framework.contract import StrategyNeeds
from framework.registry import register_strategy
from framework.strategies.base import RateConfig
from framework.strategies.base import RateStrategy


class NoneConfig(RateConfig):
    """No dropout at all on the targeted site kinds."""

    name: Literal["none"] = "none"

    def needs(self) -> StrategyNeeds:
        return replace(super().needs(), masks="none")


@register_strategy("none", config=NoneConfig)
class NoDropout(RateStrategy):
    config: NoneConfig

    def rate(self, step: int, total_steps: int) -> float:
        return 0.0
