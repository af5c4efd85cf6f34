"""Stochastic depth (Huang et al. 2016): per-example branch drops, rescaling, per-layer rates."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from framework.config import load_spec
from framework.data.base import Batch
from framework.errors import SpecError
from framework.models.encoder import Encoder
from framework.models.gpt import GPT
from framework.models.sites import ResidualBranch
from framework.models.sites import StrategyConflict
from framework.models.sites import find_branches
from framework.models.specs import EncoderSpec
from framework.models.specs import GPTSpec
from plugins.stochastic_depth import StochasticDepth
from plugins.stochastic_depth import StochasticDepthConfig
from tests.conftest import write_study


def gpt(n_layer: int = 4) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTSpec(n_layer=n_layer, n_head=2, n_embd=16, block_size=8), {"vocab_size": 11})


def batch(rows: int = 3) -> Batch:
    x = torch.randint(0, 11, (rows, 8), generator=torch.Generator().manual_seed(1))
    return Batch(x, torch.roll(x, -1, 1))


def test_a_branch_is_dropped_whole_per_example_and_kept_ones_are_rescaled() -> None:
    branch = ResidualBranch("mlp").train()
    branch.p = 0.25
    x = torch.arange(1.0, 1.0 + 6 * 2 * 3).view(6, 2, 3)
    torch.manual_seed(3)
    out = branch(x)
    torch.manual_seed(3)
    kept = (torch.rand(6, 1, 1) >= 0.25).float()  # the same draw, one per example
    assert torch.allclose(out, x * kept / 0.75)
    # All of an example or nothing: a dropped example is 0, a kept one is x / (1 - p).
    dropped = (out.flatten(1) == 0).all(1)
    assert torch.equal(dropped, kept.flatten() == 0) and 0 < dropped.sum() < 6
    assert torch.allclose(out[~dropped], x[~dropped] / 0.75)


def test_rescaling_keeps_the_expectation() -> None:
    branch = ResidualBranch("attention").train()
    branch.p = 0.4
    torch.manual_seed(0)
    out = branch(torch.ones(200_000, 1, 2))
    assert out.unique().tolist() == [0.0, pytest.approx(1 / 0.6)]
    # E = (1 - p) / (1 - p) = 1; the mean of 200k draws has s.e. sqrt(p / (1 - p) / n) ~ 0.002.
    assert out.mean().item() == pytest.approx(1.0, abs=0.01)


def test_off_at_rate_0_and_in_evaluation_without_drawing() -> None:
    branch = ResidualBranch("mlp")
    x = torch.randn(4, 3)
    rng = torch.get_rng_state()
    assert branch.train()(x) is x
    branch.p = 0.5
    assert branch.eval()(x) is x
    assert torch.equal(torch.get_rng_state(), rng)


@pytest.mark.parametrize(("profile", "expected"), [
    ("linear", [0.05, 0.1, 0.15, 0.2]),  # p_l = p * l / L (Huang et al., eq. 4)
    ("uniform", [0.2, 0.2, 0.2, 0.2]),
])
def test_per_layer_rates_on_both_branches_of_each_block(profile: str,
                                                        expected: list[float]) -> None:
    model = gpt()
    strategy = StochasticDepth(StochasticDepthConfig(p=0.2, profile=profile))
    strategy.attach(model)
    for layer, rate in zip(model.layers, expected, strict=True):
        assert [(b.kind, b.p) for b in find_branches(layer)] == [
            ("attention", pytest.approx(rate)), ("mlp", pytest.approx(rate))]
    assert strategy.log_values() == {"rate/stochastic_depth.p": 0.2}


def test_attention_and_mlp_branches_are_dropped_separately() -> None:
    model = gpt(n_layer=1)
    StochasticDepth(StochasticDepthConfig(p=0.5, profile="uniform")).attach(model)
    block = model.layers[0]
    dropped: dict[str, torch.Tensor] = {}
    for name in ("attn_branch", "mlp_branch"):
        getattr(block, name).register_forward_hook(
            lambda m, args, out, name=name: dropped.__setitem__(name, (out == 0).flatten(1).all(1)))
    model.train()(batch(rows=64))
    attention, mlp = dropped["attn_branch"], dropped["mlp_branch"]
    assert 0 < attention.sum() < 64 and 0 < mlp.sum() < 64
    assert not torch.equal(attention, mlp)  # equal by chance with probability 2^-64


def test_evaluation_is_the_model_without_stochastic_depth() -> None:
    plain, model = gpt(), gpt()
    StochasticDepth(StochasticDepthConfig(p=0.5)).attach(model)
    assert torch.equal(model.eval()(batch()).logits, plain.eval()(batch()).logits)
    assert not torch.equal(model.train()(batch()).logits, model.train()(batch()).logits)


def test_the_encoder_has_branches_and_a_second_owner_is_refused(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = Encoder(EncoderSpec(n_layer=2, n_head=2, n_embd=16, block_size=8),
                    {"vocab_size": 11, "num_classes": 2})
    StochasticDepth(StochasticDepthConfig()).attach(model)
    assert len(find_branches(model)) == 4
    with pytest.raises(StrategyConflict, match="residual branches"):
        StochasticDepth(StochasticDepthConfig()).attach(model)
    study = write_study(tmp_path, """
        name: sd
        model: {name: gpt, n_layer: 2, n_head: 2, n_embd: 16, block_size: 16}
        data: {name: shakespeare_char}
        dropout: [{name: stochastic_depth}, {name: stochastic_depth, p: 0.3}]
        """)
    with pytest.raises(SpecError, match=r"dropout\[1\]: 'stochastic_depth' and dropout\[0\] "
                                        r"\(stochastic_depth\) both drop the residual branches"):
        load_spec(study)


def test_a_model_without_branch_hooks_is_refused_at_validation(tmp_path: Path) -> None:
    study = write_study(tmp_path, """
        name: sd
        model: {name: mlp, hidden: [16, 16]}
        data: {name: digits}
        dropout: [{name: stochastic_depth, p: 0.1}]
        """)
    with pytest.raises(SpecError, match=r"dropout\[0\]: 'stochastic_depth' cannot act on model "
                                        r"'mlp'.*residual-branch hooks"):
        load_spec(study)
