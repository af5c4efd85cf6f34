"""A dropout rate of zero costs nothing: GPT training steps at p = 0 against p = 0.2.

Dynamic Dropout (Yan & Shao, arXiv 2411.03236) claims faster training as the rate decays. That
can only happen if a site at rate 0 skips the dropout op (no random mask, no scaling) and fused
attention gets ``dropout_p=0``. This benchmark first checks both by counting calls, then times
training steps (forward, backward, AdamW) of a character GPT on Tiny Shakespeare with every
dropout site at p = 0 and at p = 0.2, plus p = 0.2 on all sites but attention, to show where the
cost is. Every run builds the model and optimizer and warms up for two untimed steps; runs
alternate between the variants in a rotated order after a warm-up round (``_timing.py``), so
that a noisy machine slows them alike; the printed figures are medians of per-run seconds per
step and their ratios, followed by the conditions (threads, load). Target: p = 0 at least 1.25x
faster than p = 0.2 on the reference setting (4 layers, 128 wide, context 64, batch 12).

``--compiled`` times every variant eager and compiled (``train.compile``'s ``torch.compile``,
inductor; compilation happens in the untimed warm-up steps) in the same alternation, and prints
the compiler's speed-up per variant and what dropout costs each way: where the compiled step
spends the time that keeps it from being much faster than the eager one at p = 0.2.

    .venv/bin/python benchmarks/zero_rate.py [--steps 40] [--repeats 5] [--threads N]
    .venv/bin/python benchmarks/zero_rate.py --compiled --repeats 5
"""

from __future__ import annotations

import argparse
import time

from _timing import Conditions
from _timing import alternate
from _timing import print_times
import torch
import torch.nn.functional as F

from framework import registry
from framework.config.sections import TrainSpec
from framework.data.specs import ShakespeareCharSpec
from framework.models.sites import find_sites
from framework.models.specs import GPTSpec
from framework.training.compile import BACKEND
from framework.training.optim import make_optimizer


KINDS = ("embedding", "attention", "residual")
VARIANTS: dict[str, dict[str, float]] = {
    "p=0": dict.fromkeys(KINDS, 0.0),
    "p=0.2": dict.fromkeys(KINDS, 0.2),
    "p=0.2, attention 0": {"embedding": 0.2, "attention": 0.0, "residual": 0.2},
}


def build(model_spec: GPTSpec, dataset, rates: dict[str, float], compiled: bool = False
          ) -> torch.nn.Module:
    torch.manual_seed(0)
    model = registry.create_model(model_spec, dataset.info)
    for site in find_sites(model):
        site.p = rates[site.kind]
    if compiled:
        model.compile(backend=BACKEND)
    return model.train()


def count_dropout_work(model: torch.nn.Module, batch) -> tuple[int, list[float]]:
    """Calls of ``F.dropout`` and the ``dropout_p`` values SDPA receives in one forward pass."""
    dropout_calls: list[float] = []
    sdpa_rates: list[float] = []
    real_dropout, real_sdpa = F.dropout, F.scaled_dot_product_attention

    def dropout_spy(x, p, *args, **kwargs):
        dropout_calls.append(p)
        return real_dropout(x, p, *args, **kwargs)

    def sdpa_spy(*args, **kwargs):
        sdpa_rates.append(kwargs.get("dropout_p", 0.0))
        return real_sdpa(*args, **kwargs)

    F.dropout, F.scaled_dot_product_attention = dropout_spy, sdpa_spy
    try:
        model(batch)
    finally:
        F.dropout, F.scaled_dot_product_attention = real_dropout, real_sdpa
    return len(dropout_calls), sdpa_rates


def seconds_per_step(model: torch.nn.Module, dataset, train: TrainSpec, steps: int) -> float:
    optimizer = make_optimizer(model, train)
    generator = torch.Generator().manual_seed(0)
    batches = [dataset.train_batch(train.batch_size, generator) for _ in range(steps + 2)]
    for batch in batches[:2]:  # warm-up: allocator and kernel choice are not timed
        model(batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    start = time.perf_counter()
    for batch in batches[2:]:
        model(batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40, help="timed steps per run")
    parser.add_argument("--repeats", type=int, default=5, help="runs per variant, alternating")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--context", type=int, default=64)
    parser.add_argument("--batch", type=int, default=12)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--compiled", action="store_true",
                        help="time every variant compiled too (torch.compile, inductor)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model_spec = GPTSpec(n_layer=args.layers, n_head=4, n_embd=args.width,
                         block_size=args.context)
    train = TrainSpec(batch_size=args.batch, lr=1e-3)
    dataset = registry.create_dataset(ShakespeareCharSpec(), model_spec)

    probe = dataset.train_batch(args.batch, torch.Generator().manual_seed(0))
    for label, rates in VARIANTS.items():
        calls, sdpa = count_dropout_work(build(model_spec, dataset, rates), probe)
        print(f"{label:20s} F.dropout calls per forward: {calls:2d}   SDPA dropout_p: {sdpa}")
    zero_calls, zero_sdpa = count_dropout_work(build(model_spec, dataset, VARIANTS["p=0"]), probe)
    if zero_calls or any(zero_sdpa):
        raise SystemExit("p = 0 still runs dropout: the sites do not skip the op")

    def run(rates: dict[str, float], compiled: bool = False) -> float:
        return seconds_per_step(build(model_spec, dataset, rates, compiled), dataset, train,
                                args.steps)

    conditions = Conditions()
    variants = {label: (lambda rates=rates: run(rates)) for label, rates in VARIANTS.items()}
    if args.compiled:
        variants |= {f"compiled {label}": (lambda rates=rates: run(rates, True))
                     for label, rates in VARIANTS.items()}
    times = alternate(variants, args.repeats)
    print(f"\nGPT {args.layers} layers x {args.width}, 4 heads, context {args.context}, batch "
          f"{args.batch}, {torch.get_num_threads()} threads; {args.steps} timed steps x "
          f"{args.repeats} runs per variant, alternating after a warm-up round")
    medians = print_times(times)
    ratio = medians["p=0.2"] / medians["p=0"]
    print(f"speed-up of p=0 over p=0.2: {ratio:.2f}x  (target >= 1.25x)")
    print(f"speed-up of p=0 over p=0.2 with attention dropout off: "
          f"{medians['p=0.2, attention 0'] / medians['p=0']:.2f}x")
    if args.compiled:
        print_compiled(medians)
    print(conditions.report())


def print_compiled(medians: dict[str, float]) -> None:
    """The compiler's speed-up per variant, and dropout's cost in milliseconds each way."""
    for label in VARIANTS:
        print(f"compiled / eager steps per second, {label:20s} "
              f"{medians[label] / medians[f'compiled {label}']:.3f}")
    for prefix in ("", "compiled "):
        step = medians[f"{prefix}p=0.2"] * 1e3
        masks = step - medians[f"{prefix}p=0"] * 1e3
        attention = step - medians[f"{prefix}p=0.2, attention 0"] * 1e3
        print(f"{prefix or 'eager '}step at p=0.2: {step:.1f} ms, of which dropout "
              f"{masks:.1f} ms ({masks / step:.0%}), attention dropout alone {attention:.1f} ms")


if __name__ == "__main__":
    main()
