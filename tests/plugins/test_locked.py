"""locked: one mask per sequence and example, the same at every time step."""

from __future__ import annotations

import torch

from framework.data.base import Batch
from framework.models.lstm_lm import LSTMLM
from framework.models.specs import LSTMLMSpec
from framework.strategies.stack import StrategyStack
from plugins.locked import LockedConfig


def test_masks_are_per_example_and_constant_over_time() -> None:
    torch.manual_seed(0)
    m = LSTMLM(LSTMLMSpec(n_layer=2, n_embd=16, n_hidden=24, tie=False, block_size=7),
               {"vocab_size": 9})
    StrategyStack.from_configs([LockedConfig(p=0.5)]).attach(m)
    seen = {}
    m.hidden_drops[0].register_forward_hook(lambda mod, a, out: seen.setdefault("h", out))
    # The recurrent state's mask: drawn once per sequence, applied at every step by the fused
    # recurrence (tests/models/test_lstm.py checks it equals the step loop's).
    op = m.layers[1].recurrent_drop.op
    drawn = []
    draw = op.sequence_mask
    op.sequence_mask = lambda state: drawn.append(draw(state)) or drawn[-1]
    m.train()(Batch(torch.randint(0, 9, (5, 7))))
    zero = seen["h"] == 0  # (T, B, H)
    assert torch.equal(zero, zero[:1].expand_as(zero))  # constant over time
    assert not torch.equal(zero[0, 0], zero[0, 1])  # differs between examples
    assert 0.3 < zero[0].float().mean() < 0.7
    [recurrent] = drawn
    assert recurrent.shape == (5, 24)  # (batch, hidden): one mask per example for every step
    assert not torch.equal(recurrent[0] == 0, recurrent[1] == 0)
    assert 0.3 < (recurrent == 0).float().mean() < 0.7
    m.eval()
    batch = Batch(torch.randint(0, 9, (5, 7)))
    with torch.no_grad():
        assert torch.equal(m(batch).logits, m(batch).logits)


def test_two_forward_passes_draw_new_masks() -> None:
    from framework.models.lstm_dropout import LockedDropout

    op = LockedDropout(0.5).train()
    x = torch.ones(3, 10, 32)
    a, b = op(x), op(x)
    assert torch.equal(a, a[:, :1].expand_as(a)) and not torch.equal(a, b)
    assert set(a.unique().tolist()) <= {0.0, 2.0}
