"""Weight drop: DropConnect on the LSTM's hidden-to-hidden matrix, as in AWD-LSTM.

Merity, Keskar & Socher, "Regularizing and Optimizing LSTM Language Models", ICLR 2018, apply
DropConnect (Wan, Zeiler, Zhang, LeCun & Fergus, ICML 2013) to ``W_hh``: one mask over the matrix's
entries per forward pass, shared by every time step and example, so the fused recurrence still
runs and the recurrent connections are regularised without touching the state. Kept weights are
scaled by 1/(1-p).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Literal

from pydantic import Field

from framework.contract import StrategyNeeds
from framework.registry import register_strategy
from framework.strategies.base import DropoutStrategy
from framework.strategies.base import StrategyConfig


if TYPE_CHECKING:
    from torch import nn


class WeightDropConfig(StrategyConfig):
    """DropConnect on every LSTM layer's W_hh, one mask per batch (AWD-LSTM)."""

    name: Literal["weight_drop"] = "weight_drop"
    p: float = Field(0.5, ge=0.0, lt=1.0)
    """Probability of dropping each entry of W_hh."""

    def needs(self) -> StrategyNeeds:
        # One mask of W_hh per forward pass: both copies of a duplicated batch share it.
        return StrategyNeeds(recurrent_cells=True, masks="per_batch")


@register_strategy("weight_drop", config=WeightDropConfig)
class WeightDrop(DropoutStrategy):
    """Sets ``weight_p`` on the model's LSTM layers (a model without them is refused)."""

    config: WeightDropConfig

    def attach(self, model: nn.Module) -> None:
        from framework.models.lstm import LSTMLayer

        self.layers = [m for m in model.modules() if isinstance(m, LSTMLayer)]
        for layer in self.layers:
            layer.weight_p = self.config.p

    def log_values(self) -> dict[str, float]:
        return {"rate/weight_hh": float(self.config.p)} if self.layers else {}
