"""The standout gate: dropout whose keep probability depends on the unit's own input.

Ba & Frey, "Adaptive dropout for training deep neural networks", NIPS 2013. A hidden unit's
activity is ``a_j = m_j g(z_j)`` with ``m_j ~ Bernoulli(pi_j)``, sampled per example and per unit,
and ``pi_j = sigmoid(sum_i pi_ji a_i)`` computed by a belief network over the layer's input ``a``.
Tying the belief network to the layer's weights gives ``pi_j = sigmoid(alpha z_j + beta)``
(``z_j = w_j . a + b_j`` the unit's pre-activation); ``alpha = 0`` is ordinary (non-inverted)
dropout with keep probability ``sigmoid(beta)``. At evaluation the mask is replaced by its
expectation: ``a_j = pi_j g(z_j)`` (no 1/keep rescaling during training).

Gradients: the keep probabilities are computed from detached ``z`` and ``a``, so the mask path
sends no gradient into the network (as in the tied version of the paper, where W is learned by
backprop through the sampled, masked activities). Where the gate has parameters of its own
(learnable alpha and beta, or the belief network's weights), the derivative of the loss with
respect to the binary mask is taken as that of its expectation ``pi`` (a straight-through
estimate in the spirit of the paper's learning through expectations of the binary units).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
import torch.nn.functional as F


class StandoutGate(nn.Module):
    """Replaces a dropout site's op; needs ``pre_activation`` (and ``inputs``) as context.

    Args:
        alpha: scale of the pre-activation in the keep probability's logit.
        beta: shift of the logit.
        shift: ``"pre_activation"``: logit ``alpha z + beta``, bias included, beta added once;
            ``"weights"``: the belief weights are ``alpha W + beta`` elementwise, so the logit is
            ``alpha (W a) + beta sum_i a_i`` (no bias).
        learn: make alpha and beta parameters learned with the network.
        linear: the layer computing ``z``; its weights are read, never registered here.
        belief: give the gate its own belief-network weights, initialised to the tied form
            (``alpha W``, ``alpha b + beta``) and learned jointly (the paper's general form).
    """

    def __init__(self, alpha: float, beta: float,
                 shift: Literal["pre_activation", "weights"] = "pre_activation",
                 learn: bool = False, linear: nn.Linear | None = None, belief: bool = False):
        super().__init__()
        self.shift = shift
        self.belief = belief
        # A list, not an attribute: the layer's weights must not be registered a second time.
        self._tied = [linear]
        if (belief or shift == "weights") and linear is None:
            raise ValueError("this standout form needs the layer's nn.Linear")
        if learn and not belief:
            self.alpha = nn.Parameter(torch.tensor(float(alpha)))
            self.beta = nn.Parameter(torch.tensor(float(beta)))
        else:
            self.alpha, self.beta = float(alpha), float(beta)
        if belief:
            weight = linear.weight.detach()  # (out, in)
            bias = torch.zeros(linear.out_features, device=weight.device)
            if linear.bias is not None:
                bias = linear.bias.detach()
            self.weight = nn.Parameter(alpha * weight.clone())
            self.bias = nn.Parameter(alpha * bias + beta)
        self.keep_sum = 0.0
        self.keep_count = 0
        self.last_keep: torch.Tensor | None = None
        """Keep probabilities (B, units) of the last forward pass."""

    def keep_probability(self, pre_activation: torch.Tensor,
                         inputs: torch.Tensor | None) -> torch.Tensor:
        """pi = sigmoid(logit), (B, units), from detached network values."""
        z = pre_activation.detach()
        if self.belief:
            logit = F.linear(self._need(inputs), self.weight, self.bias)
        elif self.shift == "pre_activation":
            logit = self.alpha * z + self.beta
        else:
            a = self._need(inputs)
            bias = self._tied[0].bias
            wa = z if bias is None else z - bias.detach()
            logit = self.alpha * wa + self.beta * a.sum(-1, keepdim=True)
        return torch.sigmoid(logit)

    @staticmethod
    def _need(inputs: torch.Tensor | None) -> torch.Tensor:
        if inputs is None:
            raise ValueError("this standout form needs the layer's input (`inputs=` context)")
        return inputs.detach()

    def forward(self, x: torch.Tensor, pre_activation: torch.Tensor | None = None,
                inputs: torch.Tensor | None = None, **context: torch.Tensor) -> torch.Tensor:
        if pre_activation is None:
            raise ValueError(
                "standout needs each unit's pre-activation: this dropout site does not pass "
                "`pre_activation=`; use standout on the `hidden` sites of the mlp model")
        keep = self.keep_probability(pre_activation, inputs)
        self.last_keep = keep.detach()
        if not self.training:
            return keep * x  # the expected mask, deterministic
        mask = (torch.rand_like(keep) < keep).to(x.dtype)
        if keep.requires_grad:
            mask = mask + keep - keep.detach()  # value: the sample; gradient: as if pi
        self.keep_sum += keep.detach().mean()
        self.keep_count += 1
        return mask * x

    def mean_keep(self) -> float | None:
        """Mean keep probability over the training passes since the last call, then reset."""
        if not self.keep_count:
            return None
        value = float(self.keep_sum / self.keep_count)
        self.keep_sum, self.keep_count = 0.0, 0
        return value

    def extra_repr(self) -> str:
        alpha = float(self.alpha)
        beta = float(self.beta)
        form = "belief" if self.belief else f"tied, shift={self.shift}"
        return f"alpha={alpha:.3g}, beta={beta:.3g}, {form}"
