"""The recurrent products of one LSTM step under per-step structured dropout, three ways.

Sarma et al. (NeurIPS 2021) drop the same k of H units of ``h_{t-1}`` across the batch, so the
recurrent product needs only k rows of ``W_hh^T`` (H x 4H). Per step, forward and backward:

* ``dense``: the masked state times the whole weight (``addmm``; the input gradient over every
  unit; the weight gradient as one rank-B update), the reference;
* ``gather``: today's compact path in ``framework/models/lstm.py``: the kept rows of the weight
  gathered into a new tensor (``index_select``), then products of half the size, the weight
  gradient added back into the kept rows (``index_add_``);
* ``kernel``: the same products with the kept rows read in place by the C++ kernels of
  :mod:`framework.models.kernels` (built on first use with the machine's compiler; AVX-512
  register-blocked tiles).

Each variant is checked against the dense result first, then timed in alternating rounds
(``_timing.py``); the ratios dense / variant are what the structured per-step benchmark
(``structured_rnn.py``) could gain at most from each, since these products are the part of the
step that dropping units shrinks.

    .venv/bin/python benchmarks/gathered_mm.py --hidden 1024 --batch 64 --p 0.5
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
import time

from _timing import Conditions
from _timing import alternate
from _timing import medians
import torch


def load_kernels():
    """The compiled kernels, or None when this machine cannot build them (the reason printed)."""
    import logging

    from framework.models import kernels

    logging.basicConfig(format="%(message)s")
    return kernels.load()


def steps(hidden: int, batch: int, p: float, kernels) -> dict[str, Callable]:
    """One step's forward product, input gradient and weight gradient, per variant: each takes
    the weight gradient to add to (as the backward loop accumulates it over the steps)."""
    G = 4 * hidden
    k = hidden - int(round(p * hidden))
    scale = hidden / k
    w_t = torch.randn(hidden, G) / hidden**0.5
    x = torch.randn(batch, G)
    h = torch.randn(batch, hidden)
    grad = torch.randn(batch, G)
    idx = torch.randperm(hidden)[:k].sort().values
    mask = torch.zeros(hidden).index_fill_(0, idx, scale)

    def dense(d_w):
        h_masked = h * mask
        gates = torch.addmm(x, h_masked, w_t)
        dh = (grad @ w_t.t()).mul_(mask)
        return gates, dh, d_w.addmm_(h_masked.t(), grad)

    def gather(d_w):
        w_kept = w_t.index_select(0, idx)
        h_kept = h.index_select(1, idx)
        gates = torch.addmm(x, h_kept, w_kept, alpha=scale)
        dh = torch.zeros_like(h).index_copy_(1, idx, (grad @ w_kept.t()).mul_(scale))
        return gates, dh, d_w.index_add_(0, idx, h_kept.t() @ grad, alpha=scale)

    variants = {"dense": dense, "gather": gather}
    if kernels is not None:
        def kernel(d_w):
            h_kept_t = h.index_select(1, idx).t().contiguous()
            gates = x.clone()
            kernels.rows_mm_(gates, h_kept_t, w_t, idx, scale)
            dh_kept_t = kernels.rows_dot(grad.t().contiguous(), w_t, idx)
            dh = torch.zeros_like(h).index_copy_(1, idx, dh_kept_t.t().mul_(scale))
            kernels.rows_add_mm(d_w, h_kept_t, grad, idx, scale)
            return gates, dh, d_w

        variants["kernel"] = kernel
    reference = dense(torch.zeros_like(w_t))
    for name, run in variants.items():
        got_all = run(torch.zeros_like(w_t))
        for got, want, what in zip(got_all, reference, ("gates", "dh", "d_w"), strict=True):
            if not torch.allclose(got, want, rtol=1e-4, atol=1e-4):
                raise AssertionError(f"{name}: {what} differs from dense by "
                                     f"{(got - want).abs().max():.3g}")
    return variants


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--batch", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--p", type=float, default=0.5)
    parser.add_argument("--calls", type=int, default=20, help="steps timed together")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    conditions = Conditions()
    kernels = load_kernels()
    if kernels is not None:
        print(f"kernels built ({'AVX-512' if kernels.vectorized() else 'plain loops'})")
    print(f"one LSTM step's recurrent products (forward, input and weight gradients), p = "
          f"{args.p}; medians of {args.repeats} alternating rounds of {args.calls} steps "
          f"(ms per step)")
    for hidden in args.hidden:
        for batch in args.batch:
            variants = steps(hidden, batch, args.p, kernels)
            d_w = torch.zeros(hidden, 4 * hidden)  # accumulated into, as over a sequence

            def timed(run, calls=args.calls, d_w=d_w):
                start = time.perf_counter()
                for _ in range(calls):
                    run(d_w)
                return (time.perf_counter() - start) / calls

            times = medians(alternate({name: (lambda r=run: timed(r))
                                       for name, run in variants.items()}, args.repeats))
            cells = "   ".join(f"{name} {value * 1e3:7.2f} ms ({times['dense'] / value:.2f}x)"
                               for name, value in times.items())
            print(f"hidden {hidden:5d}, batch {batch:3d}:   {cells}")
    print(conditions.report())


if __name__ == "__main__":
    main()
