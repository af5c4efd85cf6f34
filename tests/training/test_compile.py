"""``train.compile``: a dropout schedule compiles a bounded number of graphs, dropout still acts.

Recompilation is decided by TorchDynamo's guards, before any backend runs, so the counting tests
compile with the ``eager`` backend (seconds); one slow test runs the real inductor backend.
"""

from collections.abc import Iterator
import logging
from pathlib import Path

import pytest
import torch
from torch._dynamo.utils import counters

from framework import registry
from framework.config import load_spec
from framework.data.base import Batch
from framework.models.sites import find_sites
from framework.strategies.stack import StrategyStack
from framework.training import compile as compile_module
from framework.training.loop import train
from framework.training.run import load_dataset


CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Steps of a tiny model are far faster on one thread than on two of a loaded machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def eager_backend(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Compile with the ``eager`` backend, from a clean compilation cache and counters."""
    monkeypatch.setattr(compile_module, "BACKEND", "eager")
    torch._dynamo.reset()
    counters.clear()
    yield
    torch._dynamo.reset()


class GraphCounter:
    """Observer: the number of graphs TorchDynamo has compiled, after every training step."""

    def __init__(self) -> None:
        self.after_step: list[int] = []

    def on_step(self, step: int, total_steps: int) -> None:
        self.after_step.append(counters["stats"]["unique_graphs"])

    def on_eval(self, step: int, metrics: dict[str, float]) -> None: ...


def build(tiny_study: Path, *overrides: str):
    spec = load_spec(tiny_study, ["train.compile=true", "train.warmup_steps=0", "search.space={}",
                                 *overrides]).spec
    dataset = load_dataset(spec)
    torch.manual_seed(0)
    return spec, dataset, registry.create_model(spec.model, dataset.info)


def test_a_200_step_linear_decay_compiles_at_most_two_training_graphs(
    tiny_study: Path, eager_backend: None
) -> None:
    spec, dataset, model = build(
        tiny_study, "train.max_steps=200", "train.eval_every=200", "train.eval_batches=1",
        "dropout=[{name: linear_decay, p_start: 0.2, p_end: 0.0, decay_steps: 150}]")
    counter = GraphCounter()
    result = train(model, dataset, spec.train, StrategyStack.from_configs(spec.dropout),
                   device=CPU, seed=0, observer=counter)
    assert counter.after_step[0] >= 1, "the model was not compiled"
    # One graph while the rate is above 0 (every rate of the decay), one once it is 0.
    assert counter.after_step[-1] <= 2, f"{counter.after_step[-1]} training graphs"
    assert result.history[-1]["rate/attention"] == 0.0
    assert all(site.p == 0.0 and float(site.rate) == 0.0 for site in find_sites(model))


def test_compiled_dropout_reaches_attention_and_stops_at_rate_0(
    tiny_study: Path, eager_backend: None
) -> None:
    _, dataset, model = build(tiny_study)
    model.compile(backend="eager")
    model.train()
    batch: Batch = dataset.train_batch(4, torch.Generator().manual_seed(0))
    attention = find_sites(model, ["attention"])
    for site in attention:
        site.p = 0.5
    assert not torch.equal(model(batch).logits, model(batch).logits), "no attention dropout"
    for site in attention:
        site.p = 0.3  # a new rate: the same graph
    graphs = counters["stats"]["unique_graphs"]
    model(batch)
    assert counters["stats"]["unique_graphs"] == graphs
    for site in attention:
        site.p = 0.0
    assert torch.equal(model(batch).logits, model(batch).logits)


def test_r_drop_compiles_a_bounded_number_of_graphs(tiny_study: Path, eager_backend: None
                                                     ) -> None:
    spec, dataset, model = build(
        tiny_study, "train.max_steps=12", "train.eval_every=12", "train.eval_batches=1",
        "dropout=[{name: linear_decay, p_start: 0.2, p_end: 0.0}, {name: r_drop, alpha: 1.0}]")
    counter = GraphCounter()
    train(model, dataset, spec.train, StrategyStack.from_configs(spec.dropout), device=CPU,
          seed=0, observer=counter)
    assert 1 <= counter.after_step[-1] <= 2


def test_layerdrop_trains_eagerly_and_says_why(tiny_study: Path, eager_backend: None,
                                               caplog: pytest.LogCaptureFixture) -> None:
    spec, dataset, model = build(tiny_study, "model.n_layer=2", "train.max_steps=2",
                                 "train.eval_every=2", "train.eval_batches=1",
                                 "dropout=[{name: layerdrop, p: 0.5}]")
    with caplog.at_level(logging.WARNING, logger=compile_module.__name__):
        train(model, dataset, spec.train, StrategyStack.from_configs(spec.dropout), device=CPU,
              seed=0)
    assert counters["stats"]["unique_graphs"] == 0
    assert "training eagerly" in caplog.text and "layerdrop" in caplog.text


@pytest.mark.slow
def test_inductor_compiles_the_sites_tensor_rates(tiny_study: Path) -> None:
    torch._dynamo.reset()
    _, dataset, model = build(tiny_study, "model.n_embd=8")
    model.compile(backend=compile_module.BACKEND)
    batch: Batch = dataset.train_batch(2, torch.Generator().manual_seed(0))
    for site in find_sites(model):
        site.p = 0.5
    try:
        first = model(batch)
        first.loss.backward()
        second = model(batch).logits
    finally:
        torch._dynamo.reset()
    assert all(p.grad is not None and p.grad.isfinite().all() for p in model.parameters())
    assert not torch.equal(first.logits, second), "no dropout in the compiled graph"
