"""weight_drop: DropConnect on W_hh, one mask per forward pass, off in evaluation."""

from __future__ import annotations

import torch

from framework.models.lstm import LSTMLayer
from framework.strategies.stack import StrategyStack
from plugins.weight_drop import WeightDropConfig


def test_drops_recurrent_weights_in_training_only() -> None:
    torch.manual_seed(0)
    layer = LSTMLayer(4, 16)
    StrategyStack.from_configs([WeightDropConfig(p=0.5)]).attach(layer)
    assert layer.weight_p == 0.5
    x = torch.randn(5, 3, 4)
    layer.train()
    out, _ = layer(x)
    out.sum().backward()
    grad = layer.weight_hh.grad
    frac_zero = (grad == 0).float().mean().item()
    assert 0.4 < frac_zero < 0.6  # dropped weights get no gradient
    assert layer.weight_ih.grad.ne(0).float().mean() > 0.95  # input weights untouched
    layer.eval()
    with torch.no_grad():
        ref = torch.nn.LSTM(4, 16)
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(ref, f"{name}_l0").copy_(getattr(layer, name))
        torch.testing.assert_close(layer(x)[0], ref(x)[0])
