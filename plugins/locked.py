"""Locked (variational) dropout: one mask per sequence and example, reused at every time step.

Gal & Ghahramani, "A Theoretically Grounded Application of Dropout in Recurrent Neural Networks",
NeurIPS 2016: in a recurrent network each example samples one dropout mask per sequence and uses
it at every step, on the inputs, the recurrent state and the outputs, which approximates
variational inference over the weights; AWD-LSTM (Merity, Keskar & Socher 2018) uses it as
"locked dropout". Kept units are scaled by 1/(1-p). On a model without a time axis at a site (2-D
tensors outside a recurrence) it is ordinary dropout.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING
from typing import Literal

from pydantic import Field

from framework.contract import StrategyNeeds
from framework.registry import register_strategy
from framework.strategies.base import DropoutStrategy
from framework.strategies.base import RateConfig


if TYPE_CHECKING:
    from torch import nn


class LockedConfig(RateConfig):
    """Variational dropout: the same mask at every time step of a sequence (Gal & Ghahramani)."""

    name: Literal["locked"] = "locked"
    p: float = Field(0.2, ge=0.0, lt=1.0)
    """Probability of dropping a unit, once per sequence and example."""
    sites: list[Literal["embedding", "hidden", "recurrent", "output"]] = Field(
        default_factory=lambda: ["embedding", "hidden", "recurrent", "output"], min_length=1)
    """Kinds of dropout site that get locked masks."""

    def needs(self) -> StrategyNeeds:
        return replace(super().needs(), replaces_op=True)


@register_strategy("locked", config=LockedConfig)
class Locked(DropoutStrategy):
    """Replaces the op of the claimed sites with a locked mask."""

    config: LockedConfig

    def attach(self, model: nn.Module) -> None:
        from framework.models.lstm_dropout import LockedDropout

        self.sites = self.claim_sites(model)
        for site in self.sites:
            site.op = LockedDropout(self.config.p)

    def log_values(self) -> dict[str, float]:
        return {f"rate/{kind}": float(self.config.p) for kind in sorted(
            {site.kind for site in self.sites})}
