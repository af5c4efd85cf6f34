import math

import pytest
import torch
import torch.nn.functional as F

from framework.data.base import Batch
from framework.models.gpt import GPT
from framework.models.sites import find_sites
from framework.models.specs import GPTSpec


def tiny_gpt(**overrides) -> GPT:
    torch.manual_seed(0)
    spec = GPTSpec(**{"n_layer": 2, "n_head": 2, "n_embd": 16, "block_size": 8, **overrides})
    return GPT(spec, {"vocab_size": 11})


def batch() -> Batch:
    x = torch.randint(0, 11, (3, 8), generator=torch.Generator().manual_seed(1))
    return Batch(x, torch.roll(x, -1, dims=1))


def test_shapes_loss_and_per_layer_outputs() -> None:
    out = tiny_gpt()(batch(), need_hidden=True, need_attention=True)
    assert out.logits.shape == (3, 8, 11)
    assert out.loss.ndim == 0
    assert out.loss.item() == pytest.approx(math.log(11), abs=0.3)
    assert len(out.hidden_states) == 2 and out.hidden_states[0].shape == (3, 8, 16)
    assert len(out.attentions) == 2 and out.attentions[0].shape == (3, 2, 8, 8)
    rows = out.attentions[0].sum(-1)
    assert torch.allclose(rows, torch.ones_like(rows))
    assert torch.all(out.attentions[0].triu(diagonal=1) == 0), "attention must be causal"


def test_declares_sites_of_each_kind_and_its_layer_stack() -> None:
    model = tiny_gpt()
    kinds = [site.kind for site in find_sites(model)]
    assert kinds.count("embedding") == 1
    assert kinds.count("attention") == 2
    assert kinds.count("residual") == 4
    assert model.layer_stack() is model.layers and len(model.layers) == 2


def test_explicit_attention_path_matches_sdpa() -> None:
    model = tiny_gpt().eval()
    fused = model(batch()).logits
    explicit = model(batch(), need_attention=True).logits
    assert torch.allclose(fused, explicit, atol=1e-5)


def test_sdpa_receives_the_attention_site_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[float] = []
    real = F.scaled_dot_product_attention

    def spy(*args, **kwargs):
        seen.append(kwargs["dropout_p"])
        return real(*args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", spy)
    model = tiny_gpt()
    for site in find_sites(model, ["attention"]):
        site.p = 0.3
    model.train()(batch())
    assert seen == [0.3, 0.3]
    model.eval()(batch())
    assert seen[2:] == [0.0, 0.0]


def test_rate_zero_skips_the_dropout_op(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr(F, "dropout", lambda *a, **k: calls.append(1) or a[0])
    model = tiny_gpt().train()
    model(batch())
    assert calls == []
    for site in find_sites(model, ["residual"]):
        site.p = 0.1
    model(batch())
    assert len(calls) == 4
