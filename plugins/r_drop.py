"""R-Drop: two dropout samples of every example, pulled together by a symmetric KL.

Liang, Wu, Li, Wang, Meng, Qin, Chen, Zhang and Liu, "R-Drop: Regularized Dropout for Neural
Networks", NeurIPS 2021. Each training example passes through the model twice with independent
dropout masks, giving P1 and P2; the loss is

    L = CE_1 + CE_2 + alpha * 1/2 [KL(P1 || P2) + KL(P2 || P1)]

(the paper's eq. 3; ``ce: mean`` halves the CE instead), with gradients through both samples.
Both samples come from one forward pass on the batch concatenated with itself. For a language
model the KL is per token (pads masked). R-Drop only changes training: inference is one ordinary
pass with dropout off. It sets no dropout rate itself: compose it with a strategy that drops units
per example, e.g. ``[{name: standard, p: 0.1}, {name: r_drop, alpha: 1}]`` (validation refuses a
trial without one). Logged terms: ``loss/ce`` (the mean of the two CEs) and ``loss/kl``
(unweighted).
"""

from __future__ import annotations

from typing import Any
from typing import Literal

from framework.registry import register_strategy
from framework.strategies.base import DropoutStrategy
from framework.strategies.base import LossResult
from framework.strategies.specs import ConsistencyConfig


class RDropConfig(ConsistencyConfig):
    """Output consistency of two dropout samples (Liang et al. 2021)."""

    name: Literal["r_drop"] = "r_drop"


@register_strategy("r_drop", config=RDropConfig)
class RDrop(DropoutStrategy):
    """Owns the loss: one pass on the duplicated batch, both CEs plus alpha times the KL."""

    config: RDropConfig

    def compute_loss(self, model: Any, batch: Any) -> LossResult:
        from framework.strategies.consistency import Weights
        from framework.strategies.consistency import consistency_loss

        return consistency_loss(model, batch, Weights(alpha=self.config.alpha,
                                                      ce=self.config.ce))
