"""Our own LSTM layer, with structured dropout that really shrinks the recurrent products.

The cell is the standard LSTM (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al.
2000), in ``torch.nn.LSTM``'s layout so the same weights give the same numbers: gates
``[i, f, g, o] = x W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh``, ``c_t = f*c_{t-1} + i*g``,
``h_t = o*tanh(c_t)`` with ``i, f, o`` sigmoids and ``g`` a tanh.

Structured dropout follows "Structured in Space, Randomized in Time: Leveraging Dropout in RNNs
for Efficient Training" (Sarma et al., 2021), case III: one set of kept hidden units, shared by the
whole batch, is drawn anew for every time step; the dropped columns of ``h_t`` are zero for every
example, so the recurrent product ``h_t W_hh^T`` needs only the kept rows of ``W_hh^T``, in forward
and in backward. Case IV draws one set per sequence. Exactly ``k = H - round(pH)`` of the ``H``
units are kept, scaled by ``H/k`` (not ``1/(1-p)``, which is biased when ``pH`` is not an
integer), so the expected masked output equals the unmasked one.

Two ways to run the recurrence:

* :class:`_FusedLSTM`, one autograd function for the whole sequence with a hand-written
  backward-through-time: no autograd node per step, buffers allocated once per sequence, and the
  recurrent products either dense (``h * mask`` times the full weight) or compact (kept units
  only; the weight gradient is accumulated only into the kept rows and the input gradient only
  into the kept columns); it also applies a recurrent site's mask that is one per sequence
  (locked dropout's ``sequence_mask``);
* an autograd loop, used when a recurrent site draws a new mask every step (standard dropout
  with per-element masks), and as the reference the tests compare with.

The input projections of the whole sequence are one product either way; in the fused backward
the recurrent weight's gradient is one product over all steps too (see ``_weight_grad``). Per-step
compact products (a different set of rows at every step) go through the C++ kernels of
:mod:`framework.models.kernels` where this machine builds them, which read the kept rows of the
weight in place; elsewhere the rows are gathered with torch first.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
import torch.nn.functional as F

from framework.models.sites import DropoutSite


State = tuple[torch.Tensor, torch.Tensor]
SAVE_GATHERED_BYTES = 512 * 2**20
"""Per-step gathered rows of W_hh^T up to this size are kept from forward for backward."""


def draw_kept(steps: int, hidden: int, p: float, per_step: bool,
              generator: torch.Generator | None = None, device: Any = None) -> torch.Tensor:
    """Indices of kept units, ``(steps, k)`` sorted, with ``k = hidden - round(p * hidden)``.

    One draw per step (case III) or one repeated for every step (case IV). A fixed count of kept
    units keeps every compact product the same shape, so buffers are allocated once per sequence;
    each unit is still dropped with probability ``round(p*H)/H`` at each draw.
    """
    k = hidden - int(round(p * hidden))
    rows = steps if per_step else 1
    scores = torch.rand(rows, hidden, generator=generator, device=device)
    kept = scores.argsort(dim=1)[:, :k].sort(dim=1).values
    return kept if per_step else kept.expand(steps, k)


def kept_to_mask(kept: torch.Tensor, hidden: int, dtype: torch.dtype = torch.float32
                 ) -> torch.Tensor:
    """The dense 0/1 mask ``(steps, hidden)`` of the kept indices ``(steps, k)``."""
    mask = torch.zeros(kept.size(0), hidden, dtype=dtype, device=kept.device)
    return mask.scatter_(1, kept, 1.0)


class _FusedLSTM(torch.autograd.Function):
    """One LSTM layer over a sequence with a hand-written backward through time.

    ``kept`` (steps, k) or None: the kept units of ``h_t``; the recurrent product of step ``t >= 1``
    sees ``h_{t-1}`` masked by ``kept[t-1]`` and scaled by ``scale``; step 0 sees the carried state
    as it is. ``compact`` selects kept-units-only products (True) or dense masked ones (False).
    ``h_mask`` (batch, hidden) or None, only without ``kept``: a mask (already scaled) on the
    state at every step, the carried one included, as a locked recurrent site applies it.
    ``kernels`` (:mod:`framework.models.kernels`), given only with per-step compact products
    (``kept``, ``compact``, not ``per_sequence``), or None: those products read the kept rows of
    ``W_hh^T`` in place instead of gathering them into a copy at every step.
    """

    @staticmethod
    def forward(ctx: Any, xproj: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor,
                w_hh_t: torch.Tensor, kept: torch.Tensor | None, scale: float, compact: bool,
                per_sequence: bool, h_mask: torch.Tensor | None = None,
                step_weight_grad: bool = True, kernels: Any = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        T, B, G = xproj.shape
        H = G // 4
        acts = torch.empty_like(xproj)  # gate activations i, f, g, o of every step
        cells = xproj.new_empty(T, B, H)
        tanh_c = xproj.new_empty(T, B, H)
        out = xproj.new_empty(T, B, H)
        dense_mask = None
        w_kept = None
        if kept is not None and not compact:
            dense_mask = kept_to_mask(kept, H, xproj.dtype).unsqueeze(1) * scale  # (T, 1, H)
        if dense_mask is not None or h_mask is not None:
            h_masked = xproj.new_empty(B, H)
        w_saved = None
        if kept is not None and compact and kernels is None:  # buffers of torch's gathers
            k = kept.size(1)
            w_kept = w_hh_t.new_empty(k, G)
            h_kept = xproj.new_empty(B, k)
            if per_sequence:  # case IV: one gather of the weight rows for the whole sequence
                torch.index_select(w_hh_t, 0, kept[0], out=w_kept)
            elif (T - 1) * k * G * w_hh_t.element_size() <= SAVE_GATHERED_BYTES:
                # Keep each step's gathered rows for backward instead of gathering them again.
                w_saved = w_hh_t.new_empty(max(T - 1, 1), k, G)
        h_prev, c_prev = h0, c0
        for t in range(T):
            gates = acts[t]
            if h_mask is not None:
                torch.mul(h_prev, h_mask, out=h_masked)
                torch.addmm(xproj[t], h_masked, w_hh_t, out=gates)
            elif t == 0 or kept is None:
                torch.addmm(xproj[t], h_prev, w_hh_t, out=gates)
            elif kernels is not None:  # per-step compact: the kept rows read in place
                gates.copy_(xproj[t])
                kernels.rows_mm_(gates, h_prev.index_select(1, kept[t - 1]).t().contiguous(),
                                 w_hh_t, kept[t - 1], scale)
            elif compact:
                if w_saved is not None:
                    w_kept = w_saved[t - 1]
                if not per_sequence:
                    torch.index_select(w_hh_t, 0, kept[t - 1], out=w_kept)
                torch.index_select(h_prev, 1, kept[t - 1], out=h_kept)
                torch.addmm(xproj[t], h_kept, w_kept, alpha=scale, out=gates)
            else:
                torch.mul(h_prev, dense_mask[t - 1], out=h_masked)
                torch.addmm(xproj[t], h_masked, w_hh_t, out=gates)
            gates[:, : 2 * H].sigmoid_()
            gates[:, 2 * H : 3 * H].tanh_()
            gates[:, 3 * H :].sigmoid_()
            i, f, g, o = gates.chunk(4, dim=1)
            c = cells[t]
            torch.mul(f, c_prev, out=c)
            c.addcmul_(i, g)
            torch.tanh(c, out=tanh_c[t])
            torch.mul(o, tanh_c[t], out=out[t])
            h_prev, c_prev = out[t], c
        ctx.save_for_backward(h0, c0, w_hh_t, acts, cells, tanh_c, out, kept, dense_mask, w_saved,
                              h_mask)
        ctx.scale, ctx.compact, ctx.per_sequence = scale, compact, per_sequence
        ctx.step_weight_grad, ctx.kernels = step_weight_grad, kernels
        return out, out[-1].clone(), cells[-1].clone()

    @staticmethod
    def backward(ctx: Any, d_out: torch.Tensor, d_hT: torch.Tensor, d_cT: torch.Tensor
                 ) -> tuple[Any, ...]:
        (h0, c0, w_hh_t, acts, cells, tanh_c, out, kept, dense_mask, w_saved,
         h_mask) = ctx.saved_tensors
        scale, compact, per_sequence = ctx.scale, ctx.compact, ctx.per_sequence
        # Per-step compact masks whose weight gradient is stacked into one dense product.
        stacked = kept is not None and compact and not per_sequence and not ctx.step_weight_grad
        T, B, G = acts.shape
        H = G // 4
        d_gates = torch.empty_like(acts)
        d_w = torch.zeros_like(w_hh_t)
        dh = d_hT.clone() if d_hT is not None else acts.new_zeros(B, H)
        dc = d_cT.clone() if d_cT is not None else acts.new_zeros(B, H)
        tmp = acts.new_empty(B, H)
        if kept is not None and compact and ctx.kernels is None:  # buffers of torch's gathers
            k = kept.size(1)
            w_kept = w_hh_t.new_empty(k, G)
            h_kept = acts.new_empty(B, k)
            dh_kept = acts.new_empty(B, k)
            dw_kept = w_hh_t.new_empty(k, G)
            if per_sequence:
                torch.index_select(w_hh_t, 0, kept[0], out=w_kept)
        for t in range(T - 1, -1, -1):
            if d_out is not None:
                dh.add_(d_out[t])
            i, f, g, o = acts[t].chunk(4, dim=1)
            di, df, dg, do = d_gates[t].chunk(4, dim=1)
            tc = tanh_c[t]
            c_prev = cells[t - 1] if t else c0
            # do = dh * tanh(c) * o(1-o)
            torch.mul(dh, tc, out=do)
            do.mul_(o).mul_(1 - o)
            # dc += dh * o * (1 - tanh(c)^2)
            torch.mul(tc, tc, out=tmp)
            tmp.neg_().add_(1).mul_(o).mul_(dh)
            dc.add_(tmp)
            torch.mul(dc, g, out=di)
            di.mul_(i).mul_(1 - i)
            torch.mul(dc, c_prev, out=df)
            df.mul_(f).mul_(1 - f)
            torch.mul(dc, i, out=dg)
            dg.mul_(1 - g * g)
            dc.mul_(f)  # gradient reaching c_{t-1}
            grad = d_gates[t]
            if h_mask is not None:
                torch.mm(grad, w_hh_t.t(), out=dh)
                dh.mul_(h_mask)
            elif t == 0 or kept is None:
                torch.mm(grad, w_hh_t.t(), out=dh)
            elif ctx.kernels is not None:  # per-step compact, the kept rows read in place
                idx = kept[t - 1]
                if not stacked:
                    h_kept_t = out[t - 1].index_select(1, idx).t().contiguous()
                    ctx.kernels.rows_add_mm(d_w, h_kept_t, grad, idx, scale)
                dh_kept_t = ctx.kernels.rows_dot(grad.t().contiguous(), w_hh_t, idx)
                dh.zero_().index_copy_(1, idx, dh_kept_t.t().mul_(scale))
            elif compact:
                idx = kept[t - 1]
                if w_saved is not None:
                    w_kept = w_saved[t - 1]
                elif not per_sequence:
                    torch.index_select(w_hh_t, 0, idx, out=w_kept)
                if not per_sequence and not stacked:
                    # Weight gradient only for the kept rows of W_hh^T (this step's rows) ...
                    torch.index_select(out[t - 1], 1, idx, out=h_kept)
                    torch.mm(h_kept.t(), grad, out=dw_kept)
                    d_w.index_add_(0, idx, dw_kept, alpha=scale)
                # ... and the input gradient only for the kept columns of h_{t-1}.
                torch.mm(grad, w_kept.t(), out=dh_kept)
                dh.zero_().index_copy_(1, idx, dh_kept.mul_(scale))
            else:
                torch.mm(grad, w_hh_t.t(), out=dh)
                dh.mul_(dense_mask[t - 1])
        if stacked:
            dense_mask = kept_to_mask(kept, H, acts.dtype).unsqueeze(1) * scale
        compact_kept = kept if compact and not stacked else None
        _weight_grad(d_w, d_gates, h0, out, compact_kept, per_sequence, scale, dense_mask, h_mask)
        return d_gates, dh, dc, d_w, None, None, None, None, None, None, None


def _weight_grad(d_w: torch.Tensor, d_gates: torch.Tensor, h0: torch.Tensor, out: torch.Tensor,
                 compact_kept: torch.Tensor | None, per_sequence: bool, scale: float,
                 dense_mask: torch.Tensor | None, h_mask: torch.Tensor | None) -> None:
    """Add to ``d_w`` the gradient of ``W_hh^T`` over every step, in one product where it can.

    Step ``t`` multiplied ``h_{t-1}`` (``h0`` at step 0), masked, by the weight; its gradient is
    that input's transpose times the step's gate gradient. A product per step has the batch as
    its inner dimension and mostly reads and writes the whole gradient, so the steps are stacked
    into one product with ``steps x batch`` inside instead: over every unit for the dense paths,
    over the kept units for one mask per sequence (``compact_kept``). Per-step compact masks keep
    a different set of rows at each step: with ``compact_kept`` the backward loop adds those
    rows itself, else (``step_weight_grad`` False) they come as a dense mask here.
    """
    T, B, G = d_gates.shape
    H = G // 4
    if compact_kept is not None:
        d_w.addmm_(h0.t(), d_gates[0])  # step 0 sees the carried state unmasked
        if per_sequence and T > 1:
            idx = compact_kept[0]
            h_kept = out[:-1].index_select(2, idx).reshape((T - 1) * B, -1)
            d_w.index_add_(0, idx, h_kept.t() @ d_gates[1:].reshape(-1, G), alpha=scale)
        return
    h_in = torch.cat([h0.unsqueeze(0), out[:-1]])  # (T, B, H): what each step multiplied
    if h_mask is not None:
        h_in.mul_(h_mask)
    elif dense_mask is not None:
        h_in[1:].mul_(dense_mask[:-1])
    d_w.addmm_(h_in.reshape(T * B, H).t(), d_gates.reshape(T * B, G))


class _CompactProjection(torch.autograd.Function):
    """``x_t W_ih^T + b`` for an input whose columns outside ``kept[t]`` are zero at step ``t``.

    The input is the previous layer's output under structured dropout (already masked and
    scaled), so each step's product needs only the kept columns of ``x_t`` and the kept rows of
    ``W_ih^T``; backward fills the weight gradient only in those rows and the input gradient only
    in those columns. With one mask per sequence (case IV) it is one product for the sequence.
    ``kernels``, given only with per-step masks (or None): each step's kept rows of ``W_ih^T``
    are read in place instead of gathered.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, kept: torch.Tensor, w_ih_t: torch.Tensor,
                bias: torch.Tensor, per_sequence: bool, kernels: Any = None) -> torch.Tensor:
        T, B, _ = x.shape
        k, G = kept.size(1), w_ih_t.size(1)
        if per_sequence:
            x_kept = x.index_select(2, kept[0]).view(T * B, k)
            out = torch.addmm(bias, x_kept, w_ih_t.index_select(0, kept[0])).view(T, B, G)
        elif kernels is not None:  # each step's kept rows of W_ih^T read in place
            out = bias.expand(T, B, G).contiguous()
            for t in range(T):
                kernels.rows_mm_(out[t], x[t].index_select(1, kept[t]).t().contiguous(), w_ih_t,
                                 kept[t], 1.0)
        else:
            out = x.new_empty(T, B, G)
            w_kept = w_ih_t.new_empty(k, G)
            x_kept = x.new_empty(B, k)
            for t in range(T):
                torch.index_select(w_ih_t, 0, kept[t], out=w_kept)
                torch.index_select(x[t], 1, kept[t], out=x_kept)
                torch.addmm(bias, x_kept, w_kept, out=out[t])
        ctx.save_for_backward(x, kept, w_ih_t)
        ctx.per_sequence, ctx.kernels = per_sequence, kernels
        return out

    @staticmethod
    def backward(ctx: Any, d_out: torch.Tensor) -> tuple[Any, ...]:
        x, kept, w_ih_t = ctx.saved_tensors
        T, B, _ = x.shape
        k, G = kept.size(1), w_ih_t.size(1)
        d_x = torch.zeros_like(x)
        d_w = torch.zeros_like(w_ih_t)
        d_bias = d_out.sum(dim=(0, 1))
        if ctx.per_sequence:
            idx = kept[0]
            x_kept = x.index_select(2, idx).view(T * B, k)
            g = d_out.reshape(T * B, G)
            d_w.index_copy_(0, idx, x_kept.t() @ g)
            d_x.index_copy_(2, idx, (g @ w_ih_t.index_select(0, idx).t()).view(T, B, k))
            return d_x, None, d_w, d_bias, None, None
        if ctx.kernels is not None:
            for t in range(T):
                idx, g = kept[t], d_out[t].contiguous()
                ctx.kernels.rows_add_mm(d_w, x[t].index_select(1, idx).t().contiguous(), g, idx,
                                        1.0)
                d_x[t].index_copy_(1, idx, ctx.kernels.rows_dot(g.t().contiguous(), w_ih_t,
                                                                idx).t())
            return d_x, None, d_w, d_bias, None, None
        w_kept = w_ih_t.new_empty(k, G)
        x_kept = x.new_empty(B, k)
        dw_kept = w_ih_t.new_empty(k, G)
        dx_kept = x.new_empty(B, k)
        for t in range(T):
            idx = kept[t]
            torch.index_select(w_ih_t, 0, idx, out=w_kept)
            torch.index_select(x[t], 1, idx, out=x_kept)
            torch.mm(x_kept.t(), d_out[t], out=dw_kept)
            d_w.index_add_(0, idx, dw_kept)
            torch.mm(d_out[t], w_kept.t(), out=dx_kept)
            d_x[t].index_copy_(1, idx, dx_kept)
        return d_x, None, d_w, d_bias, None, None


class LSTMLayer(nn.Module):
    """One LSTM layer over ``(T, B, input)`` sequences, parameters named as in ``nn.LSTM``.

    Dropout hooks, set by strategies:

    * ``recurrent_drop``: a :class:`DropoutSite` of kind ``recurrent`` on ``h_{t-1}`` where it
      feeds ``W_hh`` (per element: ``standard``; per sequence: ``locked``, which replaces its op);
    * ``weight_p``: DropConnect on ``W_hh`` (``weight_drop``, Wan et al. 2013; AWD-LSTM);
    * ``structured_p`` with ``structured_per_step``: structured dropout (``structured_rnn``); the
      layer then masks its outputs with the same kept units (``structured_output``), and runs the
      compact products unless ``structured_dense`` asks for the dense reference.
    """

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(4 * hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(4 * hidden_size))
        self.recurrent_drop = DropoutSite("recurrent")
        self.weight_p = 0.0
        self.structured_p = 0.0
        self.structured_per_step = True
        self.structured_output = True
        self.structured_recurrent = True
        self.structured_dense = False
        self.force_autograd = False
        self.compact_input_per_step: bool | None = None
        """Compact input projection under per-step masks too, T small products: None (default)
        where the compiled kernels run (1.74x dense masking against 1.44x with the recurrent
        products alone, ``docs/results/benchmarks.md``), True always (with torch's gathers we
        measured it slower than the one dense product of the whole sequence), False never.
        Per-sequence masks always use the compact product: it is one product."""
        self.step_weight_grad = True
        """Per-step compact masks: the recurrent weight's gradient over each step's kept rows,
        step by step (the paper's way); False: one dense product over every step after the
        backward loop (more arithmetic, one large product instead of T small ones)."""
        self.use_kernels = True
        """Per-step compact products through the compiled kernels of
        :mod:`framework.models.kernels` (the kept rows read in place) where they load and the
        shapes suit them (CPU, float32, a batch that is a multiple of 16); False: gathered with
        torch (``index_select``) as without them."""
        self.last_kept: torch.Tensor | None = None
        """Kept units (T, k) of the last structured training forward (tests read it)."""
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1 / math.sqrt(self.hidden_size)  # nn.LSTM's initialisation
        for w in self.parameters():
            nn.init.uniform_(w, -bound, bound)

    def forward(self, x: torch.Tensor, state: State | None = None,
                kept: torch.Tensor | None = None, input_kept: torch.Tensor | None = None,
                ) -> tuple[torch.Tensor, State]:
        """``x`` (T, B, input) -> outputs (T, B, hidden) and the final ``(h, c)``.

        ``kept`` forces the structured mask (tests); otherwise one is drawn when structured
        dropout is on and the layer is training. ``input_kept`` (T, k): the previous layer's kept
        units, when ``x`` is its structured-masked output; the input projection then runs on
        the kept columns only (per-sequence masks, or ``compact_input_per_step``; not in the dense
        reference or the autograd loop).
        """
        T, B, _ = x.shape
        H = self.hidden_size
        if state is None:
            zeros = x.new_zeros(B, H)
            state = (zeros, zeros)
        bias = self.bias_ih + self.bias_hh
        compact_input = (input_kept is not None and self.training and not self.structured_dense
                         and not self.force_autograd)
        per_sequence = compact_input and bool((input_kept == input_kept[:1]).all())
        kernels = self._kernels(x) if compact_input and not per_sequence else None
        per_step_input = self.compact_input_per_step
        if per_step_input is None:
            per_step_input = kernels is not None
        if compact_input and (per_sequence or per_step_input):
            xproj = _CompactProjection.apply(x, input_kept, self.weight_ih.t().contiguous(), bias,
                                             per_sequence, kernels)
        else:
            # The input projection of the whole sequence in one product.
            xproj = torch.addmm(bias, x.reshape(T * B, -1), self.weight_ih.t()).view(T, B, 4 * H)
        w_hh = self.weight_hh
        if self.training and self.weight_p > 0:
            w_hh = F.dropout(w_hh, self.weight_p, training=True)  # one mask per forward pass
        structured = self.training and (self.structured_p > 0 or kept is not None)
        if structured and kept is None:
            kept = draw_kept(T, H, self.structured_p, self.structured_per_step, device=x.device)
        self.last_kept = kept if structured else None
        scale = H / kept.size(1) if structured else 1.0  # unbiased for the k units kept
        site_active = self.training and (
            self.recurrent_drop.op is not None or self.recurrent_drop.p > 0)
        rec_kept = kept if self.structured_recurrent else None
        per_step_compact = (structured and rec_kept is not None and self.structured_per_step
                            and not self.structured_dense)
        h_mask = None
        sequence_mask = getattr(self.recurrent_drop.op, "sequence_mask", None)
        if site_active and sequence_mask is not None and rec_kept is None and (
                not self.force_autograd):
            # One mask for the whole sequence (locked dropout): the fused recurrence applies it,
            # drawn where the step loop would draw it, so both see the same mask.
            h_mask = sequence_mask(state[0])
            site_active = False
        if site_active or self.force_autograd:
            out, state = self._autograd_loop(xproj, state, w_hh, rec_kept, scale)
        else:
            # Rows of W_hh^T contiguous, so gathering the kept units' rows is a plain row copy.
            out, h, c = _FusedLSTM.apply(
                xproj, state[0], state[1], w_hh.t().contiguous(), rec_kept, scale,
                structured and not self.structured_dense,
                structured and not self.structured_per_step, h_mask,
                self.step_weight_grad, self._kernels(x) if per_step_compact else None)
            state = (h, c)
        if structured and self.structured_output:
            out = out * (kept_to_mask(kept, H, out.dtype).unsqueeze(1) * scale)
        return out, state

    def _kernels(self, x: torch.Tensor) -> Any:
        """The compiled kernels for per-step compact products, or None where they do not apply
        (``use_kernels`` off, another device or dtype, a batch not a multiple of 16, or none
        built on this machine)."""
        if not (self.use_kernels and x.device.type == "cpu" and x.dtype == torch.float32
                and x.size(1) % 16 == 0 and self.hidden_size % 4 == 0):
            return None
        from framework.models import kernels

        return kernels.load()

    def _autograd_loop(self, xproj: torch.Tensor, state: State, w_hh: torch.Tensor,
                       kept: torch.Tensor | None, scale: float) -> tuple[torch.Tensor, State]:
        """The plain loop, differentiated by autograd: dropout sites may act at every step."""
        h, c = state
        mask = None if kept is None else kept_to_mask(kept, self.hidden_size, h.dtype) * scale
        outs = []
        for t in range(xproj.size(0)):
            h_in = h if (mask is None or t == 0) else h * mask[t - 1]
            h_in = self.recurrent_drop(h_in, step=t)
            i, f, g, o = (xproj[t] + h_in @ w_hh.t()).chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outs.append(h)
        return torch.stack(outs), (h, c)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"


def input_kept(previous: LSTMLayer | None) -> torch.Tensor | None:
    """The kept units of the previous layer's output, if it masked it structurally."""
    if previous is None or not previous.structured_output:
        return None
    return previous.last_kept


class LSTM(nn.Module):
    """A stack of :class:`LSTMLayer` with a ``hidden`` dropout site between layers."""

    def __init__(self, input_size: int, hidden_sizes: list[int]):
        super().__init__()
        sizes = [input_size, *hidden_sizes]
        self.layers = nn.ModuleList(LSTMLayer(a, b) for a, b in zip(sizes, sizes[1:], strict=False))
        self.between = nn.ModuleList(DropoutSite("hidden") for _ in hidden_sizes[1:])

    def forward(self, x: torch.Tensor, states: list[State] | None = None
                ) -> tuple[torch.Tensor, list[State]]:
        new_states = []
        for n, layer in enumerate(self.layers):
            if n:
                x = self.between[n - 1](x)
            prev = self.layers[n - 1] if n else None
            x, state = layer(x, None if states is None else states[n], input_kept=input_kept(prev))
            new_states.append(state)
        return x, new_states
