"""Concrete dropout (Gal, Hron & Kendall 2017): the mask, the regulariser, learning the rates."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from framework import registry
from framework.config import load_spec
from framework.data.base import Batch
from framework.layers.concrete import ConcreteDropout
from framework.layers.concrete import initial_logit
from framework.models.mlp import MLP
from framework.models.specs import MLPSpec
from framework.strategies.stack import StrategyStack
from framework.training.loop import train
from framework.training.run import load_dataset
from plugins.concrete import ConcreteConfig
from plugins.r_drop import RDropConfig
from tests.conftest import write_study


def op(p: float, temperature: float) -> ConcreteDropout:
    return ConcreteDropout(torch.nn.Parameter(torch.tensor(initial_logit(p))), temperature).train()


def test_the_mask_follows_the_relaxed_bernoulli_formula(monkeypatch: pytest.MonkeyPatch) -> None:
    # p = 0.2, t = 0.5, u = 0.25: z = sigmoid((log 0.2 - log 0.8 + log 0.25 - log 0.75) / 0.5),
    # and the kept weight is (1 - z) / (1 - p).
    monkeypatch.setattr(torch, "rand", lambda shape, **kw: torch.full(shape, 0.25))
    z = 1 / (1 + math.exp(-(math.log(0.2 / 0.8) + math.log(0.25 / 0.75)) / 0.5))
    out = op(0.2, 0.5)(torch.full((2, 3), 2.0))
    assert out.detach() == pytest.approx(torch.full((2, 3), 2.0 * (1 - z) / 0.8), rel=1e-5)


def test_the_mask_is_differentiable_in_p_and_near_bernoulli_at_low_temperature() -> None:
    dropout = op(0.3, 0.01)
    torch.manual_seed(0)
    out = dropout(torch.ones(100_000, 4))
    out.sum().backward()
    assert dropout.logit.grad is not None and dropout.logit.grad.abs() > 0
    dropped = (out < 0.5).float().mean().item()  # a unit is kept at 1/(1-p) or dropped at 0
    assert dropped == pytest.approx(0.3, abs=0.01)
    assert out.detach().mean().item() == pytest.approx(1.0, abs=0.02)
    assert torch.equal(dropout.eval()(torch.ones(3)), torch.ones(3))  # identity at evaluation


def mlp(config: ConcreteConfig, *more) -> tuple[MLP, StrategyStack]:
    torch.manual_seed(0)
    model = MLP(MLPSpec(hidden=[3]), {"input_dim": 4, "num_classes": 2})
    stack = StrategyStack.from_configs([config, *more])
    stack.attach(model, {"train_size": 100})
    return model, stack


def batch() -> Batch:
    generator = torch.Generator().manual_seed(2)
    return Batch(torch.randn(5, 4, generator=generator), torch.tensor([0, 1, 1, 0, 1]))


def test_the_regulariser_is_the_papers_weight_and_entropy_terms() -> None:
    config = ConcreteConfig(sites=["embedding", "hidden"], length_scale=0.5, p_init=0.2)
    model, stack = mlp(config)
    with torch.no_grad():  # make the two sites' rates differ
        model.layers[0].drop.op.logit.fill_(initial_logit(0.4))
    terms = stack.compute_loss(model.train(), batch()).terms
    # The input site (K = 4 units) feeds layers[0].linear, the hidden site (K = 3) the head.
    n, l2 = 100, 0.25
    expected_weight = sum(l2 / (2 * n) * w.pow(2).sum().item() / (1 - p) for w, p in [
        (model.layers[0].linear.weight, 0.2), (model.head.weight, 0.4)])
    expected_entropy = sum(k / n * (p * math.log(p) + (1 - p) * math.log(1 - p))
                           for k, p in [(4, 0.2), (3, 0.4)])
    assert terms["concrete_weight"].item() == pytest.approx(expected_weight, rel=1e-5)
    assert terms["concrete_entropy"].item() == pytest.approx(expected_entropy, rel=1e-5)
    assert stack.log_values() == {"rate/embedding.0": pytest.approx(0.2),
                                  "rate/hidden.0": pytest.approx(0.4)}


def test_the_terms_are_added_to_a_loss_another_strategy_owns() -> None:
    model, stack = mlp(ConcreteConfig(sites=["hidden"], length_scale=0.5), RDropConfig(alpha=0.7))
    result = stack.compute_loss(model.train(), batch())
    assert set(result.terms) == {"ce", "kl", "concrete_weight", "concrete_entropy"}
    t = {name: value.item() for name, value in result.terms.items()}
    assert result.loss.item() == pytest.approx(
        2 * t["ce"] + 0.7 * t["kl"] + t["concrete_weight"] + t["concrete_entropy"], rel=1e-6)
    result.loss.backward()
    assert model.layers[0].drop.op.logit.grad.abs() > 0


def test_one_rate_per_kind_is_one_shared_parameter() -> None:
    torch.manual_seed(0)
    model = MLP(MLPSpec(hidden=[8, 8]), {"input_dim": 4, "num_classes": 2})
    StrategyStack.from_configs([ConcreteConfig(sites=["hidden"], per="kind")]).attach(
        model, {"train_size": 10})
    first, second = (layer.drop.op.logit for layer in model.layers)
    assert first is second
    assert sum(p is first for p in model.parameters()) == 1


def test_without_a_train_size_it_refuses_to_attach() -> None:
    model = MLP(MLPSpec(hidden=[3]), {"input_dim": 4, "num_classes": 2})
    with pytest.raises(ValueError, match="`train_size`"):
        StrategyStack.from_configs([ConcreteConfig()]).attach(model, {})


def test_rates_are_learned_and_logged_with_the_loss_terms(tmp_path: Path) -> None:
    study = write_study(tmp_path, """
        name: concrete
        model: {name: mlp, hidden: [32]}
        data: {name: digits}
        train: {max_steps: 20, batch_size: 32, lr: 0.05, eval_every: 10, eval_batches: 1}
        dropout: [{name: concrete, sites: [hidden], p_init: 0.3, length_scale: 0.1}]
        """)
    spec = load_spec(study).spec
    dataset = load_dataset(spec)
    assert dataset.info["train_size"] == len(dataset.splits["train"][1])  # N comes from the data
    torch.manual_seed(0)
    model = registry.create_model(spec.model, dataset.info)
    result = train(model, dataset, spec.train, StrategyStack.from_configs(spec.dropout),
                   device=torch.device("cpu"), seed=0)
    rates = [h["rate/hidden.0"] for h in result.history]
    assert len(rates) == 2 and all(abs(r - 0.3) > 1e-4 for r in rates)  # moved by the optimizer
    assert all(h["loss/concrete_entropy"] < 0 < h["loss/concrete_weight"] for h in result.history)
