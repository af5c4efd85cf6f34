import pytest
import torch

from framework.data.base import Batch
from framework.models.gpt import GPT
from framework.models.sites import find_sites
from framework.models.specs import GPTSpec
from plugins.none import NoDropout
from plugins.none import NoneConfig
from plugins.standard import Standard
from plugins.standard import StandardConfig


def gpt() -> GPT:
    return GPT(GPTSpec(n_layer=2, n_head=2, n_embd=16, block_size=8), {"vocab_size": 11})


def test_sets_the_rate_on_targeted_kinds_only() -> None:
    model = gpt()
    strategy = Standard(StandardConfig(p=0.3, sites=["residual"]))
    strategy.attach(model)
    assert {s.p for s in find_sites(model, ["residual"])} == {0.3}
    assert {s.p for s in find_sites(model, ["attention", "embedding"])} == {0.0}
    assert strategy.log_values() == {"rate/residual": 0.3}


def test_eval_is_the_identity_and_training_is_not() -> None:
    torch.manual_seed(0)
    model = gpt()
    Standard(StandardConfig(p=0.5)).attach(model)
    batch = Batch(torch.randint(0, 11, (2, 8)))
    model.eval()
    reference = model(batch).logits
    model.train()
    assert not torch.allclose(model(batch).logits, reference)
    NoDropoutModel = gpt()
    NoDropoutModel.load_state_dict(model.state_dict())
    NoDropout(NoneConfig()).attach(NoDropoutModel)
    assert torch.allclose(NoDropoutModel.train()(batch).logits, reference, atol=1e-6)


def test_empirical_drop_ratio_matches_p() -> None:
    torch.manual_seed(0)
    model = gpt()
    Standard(StandardConfig(p=0.2)).attach(model)
    site = find_sites(model, ["embedding"])[0].train()
    out = site(torch.ones(100_000))
    assert (out == 0).float().mean().item() == pytest.approx(0.2, abs=0.01)
