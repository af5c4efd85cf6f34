import math

import pytest
import torch
import torch.nn.functional as F

from framework import registry
from framework.data.base import Batch
from framework.models.mlp import MLP
from framework.models.sites import find_sites
from framework.models.specs import MLPSpec


INFO = {"input_dim": 12, "num_classes": 5}


def tiny_mlp(**overrides) -> MLP:
    torch.manual_seed(0)
    return MLP(MLPSpec(**{"hidden": [16, 8], **overrides}), INFO)


def batch() -> Batch:
    generator = torch.Generator().manual_seed(1)
    return Batch(torch.rand(6, 3, 4, generator=generator),
                 torch.randint(0, 5, (6,), generator=generator))


def test_logits_loss_and_hidden_states() -> None:
    out = tiny_mlp()(batch(), need_hidden=True)
    assert out.logits.shape == (6, 5)
    assert out.loss.item() == pytest.approx(F.cross_entropy(out.logits, batch().targets).item())
    assert out.loss.item() == pytest.approx(math.log(5), abs=0.5)
    assert [h.shape for h in out.hidden_states] == [(6, 16), (6, 8)]
    assert tiny_mlp()(Batch(batch().inputs)).loss is None


def test_sites_one_input_and_one_hidden_per_layer() -> None:
    model = tiny_mlp()
    assert [s.kind for s in find_sites(model)] == ["embedding", "hidden", "hidden"]
    assert model.layer_stack() is model.layers and len(model.layers) == 2


def test_hidden_site_receives_the_pre_activation_and_input() -> None:
    model = tiny_mlp()
    seen = {}

    class Spy(torch.nn.Module):
        def forward(self, x, **context):
            seen.update(x=x, **context)
            return x

    model.layers[0].drop.op = Spy()
    model(batch())
    flat = batch().inputs.flatten(1)
    z = model.layers[0].linear(flat)
    assert torch.allclose(seen["pre_activation"], z)
    assert torch.allclose(seen["x"], F.relu(z))
    assert torch.equal(seen["inputs"], flat)


def test_learns_a_separable_problem() -> None:
    model = tiny_mlp(activation="tanh")
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(64, 12, generator=generator)
    y = x[:, :5].argmax(1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        loss = model(Batch(x, y)).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert (model(Batch(x, y)).logits.argmax(1) == y).float().mean() > 0.95


def test_spec_rejects_bad_widths_and_is_registered() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        MLPSpec(hidden=[16, 0])
    with pytest.raises(ValueError):
        MLPSpec(activation="swish")
    registry.discover()
    assert isinstance(registry.create_model(MLPSpec(hidden=[4]), INFO), MLP)
