import pytest
import torch
from torch import nn

from framework.models.sites import DropoutSite
from framework.models.sites import StrategyConflict
from framework.models.sites import claim_sites


def test_a_site_belongs_to_one_strategy() -> None:
    model = nn.Sequential(DropoutSite("hidden"), DropoutSite("output"))
    assert len(claim_sites(model, ["hidden"], owner="a")) == 1
    claim_sites(model, ["output"], owner="b")
    with pytest.raises(StrategyConflict, match="'b' and 'a'"):
        claim_sites(model, ["hidden"], owner="b")


def test_inverted_dropout_rate_and_scale() -> None:
    torch.manual_seed(0)
    site = DropoutSite("hidden").train()
    site.p = 0.3
    out = site(torch.ones(200_000))
    assert (out == 0).float().mean().item() == pytest.approx(0.3, abs=0.01)
    assert out.max().item() == pytest.approx(1 / 0.7)
    assert torch.equal(site.eval()(torch.ones(5)), torch.ones(5))


def test_an_op_replaces_the_rate_and_sees_the_context() -> None:
    class Gate(nn.Module):
        def forward(self, x, pre_activation=None):
            return x * torch.sigmoid(pre_activation)

    site = DropoutSite("hidden")
    site.op = Gate()
    out = site(torch.ones(3), pre_activation=torch.zeros(3))
    assert torch.allclose(out, torch.full((3,), 0.5))
    assert any(m is site.op for m in site.modules())
