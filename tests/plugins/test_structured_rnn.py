"""structured_rnn: schema, what it sets on the LSTM layers, and that the masks act as specified."""

from __future__ import annotations

import pytest
import torch

from framework.data.base import Batch
from framework.models.lstm_lm import LSTMLM
from framework.models.sites import StrategyConflict
from framework.models.specs import LSTMLMSpec
from framework.strategies.stack import StrategyStack
from plugins.standard import StandardConfig
from plugins.structured_rnn import StructuredRNNConfig


def model() -> LSTMLM:
    torch.manual_seed(0)
    return LSTMLM(LSTMLMSpec(n_layer=3, n_embd=8, n_hidden=20, tie=False, block_size=6),
                  {"vocab_size": 9})


def test_schema_rejects_other_sites_and_rates() -> None:
    with pytest.raises(ValueError):
        StructuredRNNConfig(sites=["attention"])
    with pytest.raises(ValueError):
        StructuredRNNConfig(p=1.0)
    assert StructuredRNNConfig().claimed_kinds() == {"recurrent", "hidden"}


def test_attach_sets_every_layer_and_masks_between_layers_only() -> None:
    m = model()
    StrategyStack.from_configs([StructuredRNNConfig(p=0.5, per_step=False)]).attach(m)
    assert [layer.structured_p for layer in m.layers] == [0.5] * 3
    assert [layer.structured_output for layer in m.layers] == [True, True, False]
    assert not any(layer.structured_per_step for layer in m.layers)
    seen = []
    m.layers[0].register_forward_hook(lambda mod, a, out: seen.append(out[0]))
    m.train()(Batch(torch.randint(0, 9, (4, 6))))
    zero = seen[0] == 0  # (T, B, H) output of layer 0: one kept set for the whole sequence
    assert torch.equal(zero, zero[:1, :1].expand_as(zero)) and zero[0, 0].sum() == 10


def test_claims_its_kinds_so_standard_cannot_drop_them_again() -> None:
    stack = StrategyStack.from_configs([StructuredRNNConfig(), StandardConfig(sites=["hidden"])])
    with pytest.raises(StrategyConflict):
        stack.attach(model())


def test_training_with_structured_dropout_lowers_the_loss() -> None:
    m = model()
    stack = StrategyStack.from_configs([StructuredRNNConfig(p=0.3)])
    stack.attach(m)
    x = torch.arange(7).repeat(4, 1) % 9  # a sequence the model can learn to continue
    batch = Batch(x[:, :-1], x[:, 1:])
    opt = torch.optim.Adam(m.parameters(), 1e-2)
    losses = []
    for _ in range(30):
        m.reset_state()
        loss = stack.compute_loss(m.train(), batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.75 * losses[0]
    assert stack.log_values() == {"rate/structured": 0.3}
