"""Training-step time of structured dropout in LSTMs (Sarma et al., NeurIPS 2021, case III).

A 2-layer LSTM over ``--steps`` time steps, forward + backward of a scalar loss over every output,
for each hidden size and batch size. Variants:

* ``nn.LSTM``: the fused ``torch.nn.LSTM`` with standard dropout ``p`` between its layers;
* ``ours``: our loop with dropout off (how far it is from the fused kernel);
* ``dense p=X step|seq``: our loop with the structured masks applied densely (``h * mask`` times the
  full weight), the reference the paper compares with;
* ``struct p=X step|seq``: the compact products over the kept units (per-step masks, the paper's
  case III, through the compiled kernels that read the kept rows of the weight in place where they
  build; or one mask per sequence, case IV);
* ``gather p=X step``: the same per-step products with the kept rows gathered by torch first
  (``LSTMLayer.use_kernels = False``; the implementation before the kernels);
* ``stacked p=X step``: the compact products with per-step masks, but the recurrent weight's
  gradient as one dense product over every step after the backward loop
  (``LSTMLayer.step_weight_grad = False``) instead of one small product per step;
* ``input p=X step``: the compact products with per-step masks, and the second layer's input
  product over the first layer's kept units too, one small product per step
  (``LSTMLayer.compact_input_per_step``; the default where the kernels run) instead of one dense
  product over the sequence (the ``struct``, ``gather`` and ``stacked`` variants).

A sample is ``--steps-per-sample`` training steps of one variant, timed together (per step);
variants alternate in a rotated order over ``--repeats`` rounds after an untimed warm-up round
(``_timing.py``), so that load from other processes slows them alike; medians over the rounds and
ratios to the dense reference at the same ``p`` and mask mode are printed, then the headline:
the per-step-mask speed-up at p = 0.5, hidden 1024, batch 64 (target 1.3x), and the conditions.
One thread by default: on an oversubscribed machine a second intra-op thread that is descheduled
stalls every barrier (LSTM steps ran 20x slower at 2 threads under load).

    .venv/bin/python benchmarks/structured_rnn.py     # ~4 min of CPU on a quiet machine
    .venv/bin/python benchmarks/structured_rnn.py --hidden 1024 --batch 64 --p 0.5
"""

from __future__ import annotations

import argparse
import time

from _timing import Conditions
from _timing import alternate
from _timing import medians
import torch
from torch import nn

from framework.models.lstm import LSTM


COMPACT = ("struct", "gather", "stacked", "input")
"""The implementations of the compact products, each compared with dense masking."""


def variants(p_values: list[float]) -> list[tuple[str, dict]]:
    out: list[tuple[str, dict]] = [("nn.LSTM", {"fused": max(p_values)}), ("ours", {})]
    for p in p_values:
        for per_step in (True, False):
            mode = "step" if per_step else "seq"
            out.append((f"dense p={p} {mode}", {"p": p, "per_step": per_step, "dense": True}))
            out.append((f"struct p={p} {mode}", {"p": p, "per_step": per_step, "dense": False}))
        out.append((f"gather p={p} step", {"p": p, "per_step": True, "dense": False,
                                           "kernels": False}))
        out.append((f"stacked p={p} step", {"p": p, "per_step": True, "dense": False,
                                            "stacked": True}))
        out.append((f"input p={p} step", {"p": p, "per_step": True, "dense": False,
                                          "compact_input": True}))
    return out


def build(hidden: int, options: dict) -> nn.Module:
    if "fused" in options:
        return nn.LSTM(hidden, hidden, num_layers=2, dropout=options["fused"]).train()
    model = LSTM(hidden, [hidden, hidden]).train()
    for n, layer in enumerate(model.layers):
        layer.structured_p = options.get("p", 0.0)
        layer.structured_per_step = options.get("per_step", True)
        layer.structured_dense = options.get("dense", False)
        layer.structured_output = n == 0  # the mask also feeds the next layer
        layer.step_weight_grad = not options.get("stacked", False)
        layer.compact_input_per_step = options.get("compact_input", False)
        layer.use_kernels = options.get("kernels", True)
    return model


def step_time(model: nn.Module, x: torch.Tensor, steps: int) -> float:
    """Seconds per training step (forward, backward) over ``steps`` steps."""
    start = time.perf_counter()
    for _ in range(steps):
        out = model(x)[0]
        out.square().mean().backward()
        for param in model.parameters():
            param.grad = None
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--batch", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--p", type=float, nargs="+", default=[0.3, 0.5])
    parser.add_argument("--steps", type=int, default=10, help="time steps per sequence")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps-per-sample", type=int, default=3,
                        help="training steps timed together as one sample")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    conditions = Conditions()
    print(f"2-layer LSTM, {args.steps} time steps, forward+backward, {args.threads} thread(s); "
          f"samples of {args.steps_per_sample} training steps, medians of {args.repeats} "
          "alternating rounds after a warm-up round (ms per training step)")
    headline = None
    for hidden in args.hidden:
        for batch in args.batch:
            models = {name: build(hidden, options) for name, options in variants(args.p)}
            x = torch.randn(args.steps, batch, hidden)
            times = alternate({name: (lambda m=model, x=x: step_time(m, x, args.steps_per_sample))
                               for name, model in models.items()}, args.repeats)
            median = {name: value * 1e3 for name, value in medians(times).items()}
            print(f"\nhidden {hidden}, batch {batch}")
            print(f"  {'nn.LSTM (dropout between layers)':<34}{median['nn.LSTM']:9.1f} ms")
            print(f"  {'ours, dropout off':<34}{median['ours']:9.1f} ms   "
                  f"{median['ours'] / median['nn.LSTM']:.2f}x the time of nn.LSTM")
            for name in median:
                if name.startswith(COMPACT):
                    dense = "dense" + name.removeprefix(name.split()[0])
                    print(f"  {dense:<22}{median[dense]:9.1f} ms   {name:<18}{median[name]:9.1f}"
                          f" ms   speed-up {median[dense] / median[name]:.2f}x"
                          f"   vs nn.LSTM {median['nn.LSTM'] / median[name]:.2f}x")
            for name, values in times.items():  # every round: a target's interval pairs them
                rounds = ", ".join(f"{v * 1e3:.1f}" for v in values)
                print(f"  {name} @ hidden {hidden} batch {batch}   median {median[name]:.1f} ms"
                      f"   runs [{rounds}]")
            if (hidden, batch) == (1024, 64) and "struct p=0.5 step" in median:
                best = min((f"{kind} p=0.5 step" for kind in COMPACT), key=median.__getitem__)
                headline = (median["dense p=0.5 step"] / median[best], best)
    if headline is not None:
        print(f"\nper-step masks, p = 0.5, hidden 1024, batch 64: {headline[0]:.2f}x the speed of "
              f"dense masking with the faster implementation ({headline[1]}; target 1.3x)")
    print(conditions.report())


if __name__ == "__main__":
    main()
