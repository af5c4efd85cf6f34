"""Config bases shared by several strategies (torch-free, like every schema)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from framework.contract import StrategyNeeds
from framework.strategies.base import StrategyConfig


class ConsistencyConfig(StrategyConfig):
    """Base of the consistency losses of two dropout samples (R-Drop, LR-Drop)."""

    alpha: float = Field(1.0, ge=0.0)
    """Weight of the symmetric KL between the two samples' output distributions."""
    ce: Literal["sum", "mean"] = "sum"
    """How the two samples' cross-entropies enter the loss: summed, as in the papers' formula
    (so published alpha values carry over), or averaged (the CE then weighs half as much, so
    alpha must be halved to match a paper's)."""

    def needs(self) -> StrategyNeeds:
        return StrategyNeeds(independent_samples=True)
