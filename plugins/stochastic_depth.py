"""Stochastic depth (DropPath): drop each residual branch per example, rescale the kept ones.

Huang, Sun, Liu, Sedra and Weinberger, "Deep Networks with Stochastic Depth", ECCV 2016. In
training, each residual branch of layer l is dropped with rate p_l, independently for every
example (the whole branch: ``x + 0``), and a kept branch is scaled by 1/(1 - p_l), so that the
expected output equals the deterministic one used at evaluation (the inverted form of the ports
used in ViTs and ConvNeXt; the paper scales by the survival probability at test time instead).
The per-layer rate is either ``uniform`` (p everywhere) or ``linear`` in depth, p_l = p * l / L
for l = 1..L (the paper's linear decay rule, eq. 4): the shallow layers, whose features all the
others use, are dropped least. A Transformer block's two branches, attention and MLP, are dropped
separately.

Unlike LayerDrop (one draw per layer per batch, which saves the dropped layer's compute), the
draws are per example, so every branch still runs. It acts on models whose blocks pass their
branches through :class:`~framework.models.sites.ResidualBranch` hooks (``gpt``, ``encoder``);
validation refuses it elsewhere. Its rate ``p`` may be driven by any schedule of the trial:
``{name: late, p: 0.1, drives: stochastic_depth.p}`` is the late stochastic depth of Liu et al.
(ICML 2023). Logs ``rate/stochastic_depth.p`` (the current p) at every evaluation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Literal

from pydantic import Field

from framework.contract import StrategyNeeds
from framework.registry import register_strategy
from framework.strategies.base import DrivenRateStrategy
from framework.strategies.base import StrategyConfig


if TYPE_CHECKING:
    from torch import nn

    from framework.models.sites import ResidualBranch


class StochasticDepthConfig(StrategyConfig):
    """Per-example drop of residual branches, kept ones scaled by 1/(1-p_l) (Huang et al. 2016)."""

    name: Literal["stochastic_depth"] = "stochastic_depth"
    p: float = Field(0.1, ge=0.0, lt=1.0)
    """Drop rate of every layer's branches (``uniform``) or of the last layer's (``linear``)."""
    profile: Literal["uniform", "linear"] = "linear"
    """Per-layer rates: p everywhere, or p * l / L rising with depth (the paper's rule)."""

    def needs(self) -> StrategyNeeds:
        return StrategyNeeds(residual_branches=True, masks="per_example", rates=("p",))


@register_strategy("stochastic_depth", config=StochasticDepthConfig)
class StochasticDepth(DrivenRateStrategy):
    """Sets the rate of every :class:`ResidualBranch` hook of the model, layer by layer.

    Example::

        dropout:
          - {name: standard, p: 0.1, sites: [attention]}
          - {name: stochastic_depth, p: 0.2, profile: linear}
    """

    config: StochasticDepthConfig

    def __init__(self, config: StochasticDepthConfig):
        super().__init__(config)
        self.p = config.p
        """The current rate: the config's, or what a schedule driving it set last."""
        self.layers: list[list[ResidualBranch]] = []
        """The branch hooks of each layer that has any, input side first."""

    def attach(self, model: nn.Module) -> None:
        from framework.models.sites import StrategyConflict
        from framework.models.sites import StrategyIncompatible
        from framework.models.sites import find_branches

        stack = getattr(model, "layers", None)
        if stack is not None:
            # Indexing, not iteration: a LayerDrop stack yields only the kept layers when iterated.
            groups = [find_branches(stack[i]) for i in range(len(stack))]
        else:
            groups = [[branch] for branch in find_branches(model)]
        self.layers = [group for group in groups if group]
        if not self.layers:
            raise StrategyIncompatible(f"{self.name!r} drops residual branches and "
                                       f"{type(model).__name__} has no ResidualBranch hooks")
        for branch in (b for group in self.layers for b in group):
            if branch.owner is not None:  # two owners would overwrite each other's rates
                raise StrategyConflict(f"{self.name!r} and {branch.owner!r} both claim the "
                                       "residual branches")
            branch.owner = self.name
        self._apply()

    def layer_rates(self) -> list[float]:
        """The current rate of each layer with branches, input side first."""
        from framework.layers.layerdrop import layer_rates

        return layer_rates(len(self.layers), self.p, self.config.profile)

    def _apply(self) -> None:
        for rate, group in zip(self.layer_rates(), self.layers, strict=True):
            for branch in group:
                branch.p = rate

    def rate_changed(self) -> None:
        if self.layers:
            self._apply()

    def log_values(self) -> dict[str, float]:
        return {"rate/stochastic_depth.p": self.p}
