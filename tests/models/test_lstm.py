"""Our LSTM layer: equal to nn.LSTM with dropout off; structured masks compact == dense."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from framework.models.lstm import LSTM
from framework.models.lstm import LSTMLayer
from framework.models.lstm import draw_kept
from framework.models.lstm import kept_to_mask


T, B, D_IN, H = 6, 3, 5, 8


def copy_from(layer: LSTMLayer, ref: nn.LSTM, n: int = 0) -> None:
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(layer, name).copy_(getattr(ref, f"{name}_l{n}"))


def run(layer: LSTMLayer, x, h0, c0, kept=None):
    """Outputs and the gradients of a loss that uses every output and the final state."""
    for t in (x, h0, c0):
        t.grad = None
    layer.zero_grad()
    out, (h, c) = layer(x, (h0, c0), kept=kept)
    (out.sin().sum() + h.cos().sum() + (c * c).sum()).backward()
    grads = [x.grad, h0.grad, c0.grad, *(p.grad for p in layer.parameters())]
    return [out.detach(), h.detach(), c.detach()], [g.clone() for g in grads]


def inputs():
    torch.manual_seed(0)
    return (torch.randn(T, B, D_IN, requires_grad=True), torch.randn(B, H, requires_grad=True),
            torch.randn(B, H, requires_grad=True))


@pytest.mark.parametrize("autograd", [False, True])
def test_equals_nn_lstm_forward_and_gradients(autograd: bool) -> None:
    x, h0, c0 = inputs()
    ref = nn.LSTM(D_IN, H)
    layer = LSTMLayer(D_IN, H)
    copy_from(layer, ref)
    layer.force_autograd = autograd
    out, (h, c) = ref(x, (h0[None], c0[None]))
    (out.sin().sum() + h.cos().sum() + (c * c).sum()).backward()
    expected = [x.grad.clone(), h0.grad.clone(), c0.grad.clone(),
                *(getattr(ref, f"{n}_l0").grad for n in
                  ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))]
    values, grads = run(layer, x, h0, c0)
    torch.testing.assert_close(values[0], out.detach())
    torch.testing.assert_close(values[1], h[0].detach())
    for got, want in zip(grads, expected, strict=True):
        torch.testing.assert_close(got, want)


def test_stack_equals_two_layer_nn_lstm_in_eval() -> None:
    torch.manual_seed(1)
    ref = nn.LSTM(D_IN, H, num_layers=2, dropout=0.5).eval()
    stack = LSTM(D_IN, [H, H]).eval()
    for n, layer in enumerate(stack.layers):
        copy_from(layer, ref, n)
    x = torch.randn(T, B, D_IN)
    torch.testing.assert_close(stack(x)[0], ref(x)[0])


@pytest.mark.parametrize("per_step", [True, False])
def test_compact_dense_and_autograd_paths_agree_under_the_same_mask(per_step: bool) -> None:
    x, h0, c0 = inputs()
    layer = LSTMLayer(D_IN, H).train()
    layer.structured_p = 0.5
    kept = draw_kept(T, H, 0.5, per_step, generator=torch.Generator().manual_seed(3))
    results = []
    # "stacked": the compact products, with the weight gradient as one product after the loop.
    for mode in ("autograd", "dense", "compact", "stacked"):
        layer.force_autograd = mode == "autograd"
        layer.structured_dense = mode == "dense"
        layer.step_weight_grad = mode != "stacked"
        results.append(run(layer, x, h0, c0, kept))
    (ref_values, ref_grads), *others = results
    for values, grads in others:
        for got, want in zip(values + grads, ref_values + ref_grads, strict=True):
            torch.testing.assert_close(got, want)
    # The mask really acts: without it the outputs differ.
    layer.structured_p, layer.force_autograd = 0.0, False
    assert not torch.allclose(run(layer, x, h0, c0)[0][0], ref_values[0])


def test_dropped_units_get_no_weight_gradient_from_that_step() -> None:
    """With a single recurrent step, W_hh's gradient is zero exactly in the dropped columns."""
    torch.manual_seed(2)
    layer = LSTMLayer(D_IN, H).train()
    layer.structured_p = 0.5
    layer.structured_output = False
    x = torch.randn(2, B, D_IN)
    kept = draw_kept(2, H, 0.5, per_step=True, generator=torch.Generator().manual_seed(5))
    out, _ = layer(x, kept=kept)
    out[1].sum().backward()  # only step 1's recurrent product sees h_0 masked by kept[0]
    dropped = kept_to_mask(kept, H)[0] == 0
    grad = layer.weight_hh.grad  # (4H, H): columns are the units of h_{t-1}
    assert grad[:, dropped].abs().max() == 0
    assert grad[:, ~dropped].abs().min(dim=0).values.gt(0).all()


def test_masks_are_shared_across_the_batch_change_over_time_and_match_p() -> None:
    torch.manual_seed(4)
    layer = LSTMLayer(D_IN, 40).train()
    layer.structured_p = 0.3
    out, _ = layer(torch.randn(50, 16, D_IN))
    zero = out == 0  # (T, B, H): dropped units are exactly zero for every example
    assert torch.equal(zero, zero[:, :1].expand_as(zero))
    per_step = zero[:, 0]  # (T, H)
    assert len({tuple(row.tolist()) for row in per_step}) > 40  # new masks over time
    assert per_step.float().mean().item() == pytest.approx(0.3, abs=0.01)
    layer.structured_per_step = False
    zero = layer(torch.randn(50, 16, D_IN))[0] == 0
    assert torch.equal(zero, zero[:1].expand_as(zero))  # case IV: one mask per sequence


def test_kept_units_are_scaled_and_eval_is_deterministic() -> None:
    torch.manual_seed(6)
    layer = LSTMLayer(D_IN, H)
    layer.structured_p = 0.5
    x = torch.randn(T, B, D_IN)
    kept = draw_kept(T, H, 0.5, True)
    layer.structured_recurrent = False  # outputs are then the plain outputs times the mask
    masked, _ = layer.train()(x, kept=kept)
    plain, _ = layer.eval()(x)
    torch.testing.assert_close(masked, plain * kept_to_mask(kept, H)[:, None] * 2.0)
    assert torch.equal(layer(x)[0], layer(x)[0])


def test_kept_units_are_scaled_by_h_over_k_so_the_mask_is_unbiased() -> None:
    # H = 10, p = 0.25: round(2.5) = 2 units dropped, k = 8 kept; 1/(1-p) would give 1.333.
    torch.manual_seed(8)
    layer = LSTMLayer(D_IN, 10)
    layer.structured_p, layer.structured_recurrent = 0.25, False
    x = torch.randn(T, B, D_IN)
    kept = draw_kept(T, 10, 0.25, True)
    assert kept.size(1) == 8
    masked, _ = layer.train()(x, kept=kept)
    plain, _ = layer.eval()(x)
    # E[mask * scale] = (k / H) * (H / k) = 1 per unit: the masked output is unbiased.
    torch.testing.assert_close(masked, plain * kept_to_mask(kept, 10)[:, None] * 1.25)


def test_recurrent_site_with_standard_dropout_uses_per_element_masks() -> None:
    torch.manual_seed(7)
    layer = LSTMLayer(D_IN, H).train()
    seen = []
    layer.recurrent_drop.p = 0.5
    layer.recurrent_drop.register_forward_hook(lambda m, a, out: seen.append(out))
    layer(torch.randn(T, B, D_IN))
    assert len(seen) == T  # the site acts at every step
    zeros = torch.stack(seen[1:]) == 0
    assert zeros.any() and not torch.equal(zeros, zeros[:, :1].expand_as(zeros))


@pytest.mark.parametrize("per_step", [True, False])
def test_two_layer_stack_with_compact_input_projection_matches_the_references(
        per_step: bool) -> None:
    torch.manual_seed(8)
    stack = LSTM(D_IN, [H, H]).train()
    x = torch.randn(T, B, D_IN, requires_grad=True)
    results = []
    for mode in ("autograd", "dense", "compact"):
        for layer in stack.layers:
            layer.structured_p, layer.structured_per_step = 0.5, per_step
            layer.force_autograd = mode == "autograd"
            layer.structured_dense = mode == "dense"
            layer.compact_input_per_step = True
        stack.layers[1].structured_output = False
        stack.zero_grad()
        x.grad = None
        torch.manual_seed(9)  # the same masks in every mode
        out, states = stack(x)
        (out.sin().sum() + states[1][0].sum()).backward()
        results.append([out.detach(), x.grad.clone(),
                        *(p.grad.clone() for p in stack.parameters())])
    reference, *others = results
    for other in others:
        for got, want in zip(other, reference, strict=True):
            torch.testing.assert_close(got, want)
    # Dropped input columns of layer 1 get no input-weight gradient from a one-step sequence.
    stack.zero_grad()
    torch.manual_seed(10)
    stack(torch.randn(1, B, D_IN))[0].sum().backward()
    dropped = kept_to_mask(stack.layers[0].last_kept, H)[0] == 0
    assert stack.layers[1].weight_ih.grad[:, dropped].abs().max() == 0


def test_a_locked_recurrent_mask_runs_fused_and_equals_the_step_loop(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from framework.models.lstm_dropout import LockedDropout

    x, h0, c0 = inputs()
    layer = LSTMLayer(D_IN, H).train()
    layer.recurrent_drop.op = LockedDropout(0.5)
    layer.force_autograd = True
    torch.manual_seed(4)
    ref_values, ref_grads = run(layer, x, h0, c0)
    layer.force_autograd = False

    def no_loop(*args: object) -> None:
        raise AssertionError("a per-sequence mask must not need the step loop")

    monkeypatch.setattr(layer, "_autograd_loop", no_loop)
    torch.manual_seed(4)  # the same mask, drawn where the loop draws it
    values, grads = run(layer, x, h0, c0)
    for got, want in zip(values + grads, ref_values + ref_grads, strict=True):
        torch.testing.assert_close(got, want)
    layer.recurrent_drop.op = None  # the mask really acts
    assert not torch.allclose(run(layer, x, h0, c0)[0][0], ref_values[0])
