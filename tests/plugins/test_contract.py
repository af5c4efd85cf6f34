"""Every registered strategy, checked the same way: a new plugin is tested with no new code."""

from __future__ import annotations

import pytest
import torch

from framework import registry
from framework.data.base import Batch
from framework.models.gpt import GPT
from framework.models.specs import GPTSpec
from framework.strategies.stack import StrategyStack


registry.discover()
NAMES = registry.strategies.names()


def default_config(name: str):
    return registry.strategies.get(name).config()


@pytest.mark.parametrize("name", NAMES)
def test_defaults_validate_and_round_trip(name: str) -> None:
    config = default_config(name)
    schema = type(config)
    assert schema.model_validate(config.model_dump()) == config
    with pytest.raises(ValueError, match="Extra inputs"):
        schema.model_validate({**config.model_dump(), "no_such_field": 1})
    assert config.__doc__ and config.__doc__.strip(), "a config needs a one-line docstring"


@pytest.mark.parametrize("name", NAMES)
def test_attaches_trains_a_step_and_evaluates_deterministically(name: str) -> None:
    torch.manual_seed(0)
    model = GPT(GPTSpec(n_layer=2, n_head=2, n_embd=16, block_size=8), {"vocab_size": 11})
    stack = StrategyStack.from_configs([default_config(name)])
    stack.attach(model)
    x = torch.randint(0, 11, (4, 8))
    batch = Batch(x, torch.roll(x, -1, 1))
    stack.on_step(0, 10)
    loss = stack.compute_loss(model.train(), batch).loss
    loss.backward()
    assert torch.isfinite(loss)
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    model.eval()
    inference = stack.for_inference(model)
    with torch.no_grad():
        assert torch.equal(inference(batch).logits, inference(batch).logits)
    assert all(isinstance(v, float) for v in stack.log_values().values())
