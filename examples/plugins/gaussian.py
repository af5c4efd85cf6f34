"""Gaussian dropout: multiply units by N(1, p/(1-p)) noise (Srivastava et al. 2014, sec. 10)."""
from typing import Any, Literal
from pydantic import Field
from framework import DropoutStrategy, RateConfig, StrategyNeeds, register_strategy


class GaussianConfig(RateConfig):
    """Multiplicative Gaussian noise with the variance of dropout at rate p."""
    name: Literal["gaussian"] = "gaussian"
    p: float = Field(0.1, ge=0.0, lt=1.0)
    """Dropout rate whose variance, p/(1-p), the noise matches."""

    def needs(self) -> StrategyNeeds:  # checked by `validate`: a model without these sites fails
        return StrategyNeeds(site_kinds=frozenset(self.sites), masks="per_example",
                             replaces_op=True)  # sets `site.op`, not `site.p`


@register_strategy("gaussian", config=GaussianConfig)
class Gaussian(DropoutStrategy):
    def attach(self, model: Any) -> None:
        import torch  # here, not at the top: see "Write a plugin" in the README
        class GaussianNoise(torch.nn.Module):
            def forward(self, x: torch.Tensor, **context: torch.Tensor) -> torch.Tensor:
                return x * (1 + self.std * torch.randn_like(x)) if self.training else x

        for site in self.claim_sites(model):  # the sites of the kinds in config.sites
            site.op = GaussianNoise()
            site.op.std = (self.config.p / (1 - self.config.p)) ** 0.5
