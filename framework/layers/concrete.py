"""Concrete dropout: a dropout rate learned by gradient descent through a relaxed Bernoulli mask.

Gal, Hron and Kendall, "Concrete Dropout", NeurIPS 2017. The drop indicator of each unit is
replaced by its Concrete (relaxed Bernoulli) relaxation with temperature t,

    z = sigmoid((log p - log(1 - p) + log u - log(1 - u)) / t),   u ~ U(0, 1),

which tends to a Bernoulli(p) draw as t -> 0 and is differentiable in p. A unit is kept with
weight 1 - z and rescaled by 1/(1 - p) (inverted dropout), so evaluation is the identity. With
p = sigmoid(theta), log p - log(1 - p) is theta itself, which keeps the mask stable near 0 and 1.

The rate is learned by minimising the data loss plus, for each dropout layer, the KL term of the
variational objective divided by the number of training points N (the paper's section 3): for a
layer whose K input units are dropped with rate p before weights W (our inverted form of the
paper's ||M||^2 (1 - p), with W = (1 - p) M),

    weight term  = l^2 / (2 N) * ||W||^2 / (1 - p)
    entropy term = K / N * (p log p + (1 - p) log(1 - p))      (= -K H(p) / N)

with l the prior length-scale. The entropy term pulls p towards 1/2 (it is smallest there), the
weight term and the data term pull it down.
"""

from __future__ import annotations

from collections.abc import Sequence
import math

import torch
from torch import nn


class ConcreteDropout(nn.Module):
    """A dropout-site op with a learned rate ``p = sigmoid(logit)``.

    Args:
        logit: the rate's logit; pass the same parameter to several ops to share one rate.
        temperature: t of the relaxation (the paper uses 0.1).
    """

    def __init__(self, logit: nn.Parameter, temperature: float):
        super().__init__()
        self.logit = logit
        self.temperature = float(temperature)
        self.units = 0
        """Units dropped per example (the last dimension of the input), known after a training
        forward pass; K of the entropy term."""
        self.last_output: torch.Tensor | None = None
        """The latest training output, kept only while the consumers are being traced."""
        self.tracing = False

    @property
    def p(self) -> torch.Tensor:
        return torch.sigmoid(self.logit)

    def mask(self, shape: torch.Size, device: torch.device) -> torch.Tensor:
        """Keep weights ``(1 - z) / (1 - p)`` of a relaxed Bernoulli draw, differentiable in p."""
        eps = torch.finfo(torch.float32).eps
        u = torch.rand(shape, device=device).clamp(eps, 1 - eps)
        drop = torch.sigmoid((self.logit + torch.log(u) - torch.log1p(-u)) / self.temperature)
        return (1 - drop) / (1 - self.p)

    def forward(self, x: torch.Tensor, **context: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        self.units = x.shape[-1]
        out = x * self.mask(x.shape, x.device).to(x.dtype)
        if self.tracing:
            self.last_output = out
        return out

    def extra_repr(self) -> str:
        return f"p={float(self.p):.4f}, temperature={self.temperature}"


def regulariser(p: torch.Tensor, units: int, weights: Sequence[torch.Tensor],
                length_scale: float, n_data: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The weight and entropy terms of one dropout layer (see the module docstring).

    Args:
        p: the layer's drop rate (a scalar tensor, so that gradients reach it).
        units: K, the number of units dropped per example.
        weights: the weight matrices that read the dropped units (may be empty).
        length_scale: l, the prior length-scale.
        n_data: N, the number of training points the data loss averages over.
    """
    squares = sum((w.pow(2).sum() for w in weights), torch.zeros((), device=p.device))
    weight = length_scale ** 2 / (2 * n_data) * squares / (1 - p)
    entropy = units / n_data * (p * torch.log(p) + (1 - p) * torch.log1p(-p))
    return weight, entropy


def initial_logit(p: float) -> float:
    """The logit of a rate: log p - log(1 - p)."""
    return math.log(p) - math.log1p(-p)
