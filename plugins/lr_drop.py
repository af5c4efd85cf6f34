"""LR-Drop: R-Drop's consistency at every layer (hidden states, attention maps, outputs).

Ni et al., "Layer-wise Regularized Dropout for Neural Language Models",
LREC-COLING 2024 (arXiv 2402.16361). Every example passes through two dropout-sampled "siamese"
sub-models, each the other's teacher, and the loss adds to R-Drop's (Liang et al. 2021)

    L = CE_1 + CE_2 + alpha * L_OR + beta * L_HSR + gamma * L_MHAR,

L_OR the symmetric KL of the output distributions, L_HSR = sum_l d(H_l^1, H_l^2) over the hidden
states of the chosen layers, L_MHAR = sum_l 1/h sum_heads d(A_l^1, A_l^2) over their attention
probabilities; pads are left out. The paper's exact distances are not public; MSE (and KL for the
attention rows, which are distributions) follow its description. Asking for the attention maps
makes the model use the explicit attention path instead of fused SDPA, so ``gamma: 0`` is faster.
Set ``beta`` or ``gamma`` to 0 for the ablations (outputs only = R-Drop). Both samples come from
one pass on the batch concatenated with itself; compose with a rate strategy such as ``standard``.
Layers are the model's own (0-based) layer numbers: under LayerDrop a layer that did not run in
a step adds nothing to that step's terms. Logged terms: ``loss/ce`` (the mean of the two CEs),
``loss/kl``, ``loss/hidden``, ``loss/attention`` (unweighted).
"""

from __future__ import annotations

from typing import Any
from typing import Literal

from pydantic import Field
from pydantic import model_validator

from framework.contract import StrategyNeeds
from framework.registry import register_strategy
from framework.strategies.base import DropoutStrategy
from framework.strategies.base import LossResult
from framework.strategies.specs import ConsistencyConfig


class LRDropConfig(ConsistencyConfig):
    """Layer-wise consistency of two dropout samples (Ni et al. 2024)."""

    name: Literal["lr_drop"] = "lr_drop"
    beta: float = Field(0.1, ge=0.0)
    """Weight of the hidden-state distance, summed over the chosen layers."""
    gamma: float = Field(0.1, ge=0.0)
    """Weight of the attention-map distance, summed over layers, averaged over heads."""
    hidden_distance: Literal["mse", "cosine"] = "mse"
    """Per token: mean squared difference over features, or 1 - cosine similarity."""
    attention_distance: Literal["mse", "kl"] = "mse"
    """Per query row: summed squared difference, or symmetric KL of the two distributions."""
    layers: list[int] | None = None
    """Layers (0-based; negative from the top) of the layer-wise terms; default: every layer."""
    top_layers: int | None = Field(None, ge=1)
    """Use only the top this many layers (an integer, so a search can vary it)."""

    @model_validator(mode="after")
    def _one_layer_choice(self) -> LRDropConfig:
        if self.layers is not None and self.top_layers is not None:
            raise ValueError("give `layers` or `top_layers`, not both")
        return self

    def layer_indices(self) -> tuple[int, ...] | None:
        if self.top_layers is not None:
            return tuple(range(-self.top_layers, 0))
        return None if self.layers is None else tuple(self.layers)

    def needs(self) -> StrategyNeeds:
        layer_wise = bool(self.beta or self.gamma)
        return StrategyNeeds(independent_samples=True, hidden_states=bool(self.beta),
                             attention_maps=bool(self.gamma),
                             layers=(self.layer_indices() or ()) if layer_wise else ())


@register_strategy("lr_drop", config=LRDropConfig)
class LRDrop(DropoutStrategy):
    """Owns the loss: one pass on the duplicated batch with hidden states and attention maps."""

    config: LRDropConfig

    def compute_loss(self, model: Any, batch: Any) -> LossResult:
        from framework.strategies.consistency import Weights
        from framework.strategies.consistency import consistency_loss

        c = self.config
        weights = Weights(alpha=c.alpha, ce=c.ce, beta=c.beta, gamma=c.gamma,
                          hidden_distance=c.hidden_distance,
                          attention_distance=c.attention_distance, layers=c.layer_indices())
        return consistency_loss(model, batch, weights)
