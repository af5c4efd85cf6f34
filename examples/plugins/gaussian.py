"""Gaussian dropout: multiply units by N(1, p/(1-p)) noise (Srivastava et al. 2014, sec. 10)."""
from typing import Literal

from pydantic import Field
import torch
from torch import nn

from framework import DropoutStrategy, RateConfig, register_strategy


class GaussianConfig(RateConfig):
    """Multiplicative Gaussian noise with the variance of dropout at rate p."""

    name: Literal["gaussian"] = "gaussian"
    p: float = Field(0.1, ge=0.0, lt=1.0)
    """Dropout rate whose variance, p/(1-p), the noise matches."""


class GaussianNoise(nn.Module):
    def forward(self, x: torch.Tensor, **context: torch.Tensor) -> torch.Tensor:
        return x * (1 + self.std * torch.randn_like(x)) if self.training else x


@register_strategy("gaussian", config=GaussianConfig)
class Gaussian(DropoutStrategy):
    def attach(self, model: nn.Module) -> None:
        for site in self.claim_sites(model):  # the sites of the kinds in config.sites
            site.op = GaussianNoise()
            site.op.std = (self.config.p / (1 - self.config.p)) ** 0.5
