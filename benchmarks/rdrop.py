"""Cost of R-Drop and LR-Drop training steps against a standard-dropout step.

One model (the SST-2 Transformer encoder, or the character GPT with ``--model gpt``), one batch,
one AdamW optimizer; a step is forward, backward and optimizer update. Variants:

* ``standard``: dropout p on every site, one pass (fused SDPA);
* ``r_drop`` and ``lr_drop`` (alpha, beta, gamma > 0: hidden states and attention maps, so the
  explicit attention path): one pass on the batch concatenated with itself;
* ``r_drop 2x`` and ``lr_drop 2x``: the same losses from two separate passes on the batch.

Rounds alternate the variants (standard, r_drop, lr_drop, ...) so that a noisy machine slows all
alike; printed are median milliseconds per step and the ratios. Targets: an ``lr_drop`` step at most
2.2x a standard step; the concatenated call at least 1.2x faster than two passes on a GPU.

    .venv/bin/python benchmarks/rdrop.py [--model encoder|gpt] [--rounds 5] [--steps 5]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
import statistics
import time
from types import SimpleNamespace

from _timing import Conditions
import torch

from framework.data.base import Batch
from framework.models.encoder import Encoder
from framework.models.gpt import GPT
from framework.models.sites import find_sites
from framework.models.specs import EncoderSpec
from framework.models.specs import GPTSpec
from framework.strategies.consistency import Weights
from framework.strategies.consistency import consistency_loss
from framework.training.optim import make_optimizer


def build(args: argparse.Namespace) -> tuple[torch.nn.Module, Batch]:
    """The model (dropout p on every site) and one fixed batch."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    if args.model == "gpt":
        model = GPT(GPTSpec(n_layer=args.layers, n_head=4, n_embd=args.width, block_size=64),
                    {"vocab_size": 65})
        x = torch.randint(0, 65, (args.batch, 64), generator=gen)
        batch = Batch(x, torch.roll(x, -1, 1))
    else:
        from framework.data.specs import SST2Spec
        from framework.data.sst2 import SST2

        spec = EncoderSpec(n_layer=args.layers, n_head=4, n_embd=args.width, block_size=64)
        data = SST2(SST2Spec(), spec)
        model = Encoder(spec, data.info)
        batch = data.train_batch(args.batch, gen)
    for site in find_sites(model):
        site.p = args.p
    return model.to(args.device).train(), batch.to(args.device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["encoder", "gpt"], default="encoder")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--p", type=float, default=0.1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5, help="steps per variant per round")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    conditions = Conditions()
    model, batch = build(args)
    optimizer = make_optimizer(model, SimpleNamespace(weight_decay=0.1, lr=1e-3, beta1=0.9,
                                                      beta2=0.99))
    r_w = Weights(alpha=1.0)
    lr_w = Weights(alpha=1.0, beta=1.0, gamma=1.0, attention_distance="kl")
    losses: dict[str, Callable[[], torch.Tensor]] = {
        "standard": lambda: model(batch).loss,
        "r_drop": lambda: consistency_loss(model, batch, r_w).loss,
        "r_drop 2x": lambda: consistency_loss(model, batch, r_w, two_passes=True).loss,
        "lr_drop": lambda: consistency_loss(model, batch, lr_w).loss,
        "lr_drop 2x": lambda: consistency_loss(model, batch, lr_w, two_passes=True).loss,
    }
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)

    def step(loss_fn: Callable[[], torch.Tensor]) -> None:
        loss_fn().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for loss_fn in losses.values():  # warm-up: allocation, kernel choice
        step(loss_fn)
    times: dict[str, list[float]] = {name: [] for name in losses}
    for _ in range(args.rounds):
        for name, loss_fn in losses.items():
            sync()
            start = time.perf_counter()
            for _ in range(args.steps):
                step(loss_fn)
            sync()
            times[name].append((time.perf_counter() - start) / args.steps * 1000)
    ms = {name: statistics.median(values) for name, values in times.items()}
    print(f"{args.model}: {args.layers} layers x {args.width}, batch {args.batch} x "
          f"{batch.inputs.size(1)} tokens, dropout {args.p}, {args.device}, "
          f"{args.threads} thread(s); {args.rounds} alternating rounds of {args.steps} steps")
    for name, values in times.items():
        print(f"{name:11s} median {ms[name]:8.2f} ms/step  rounds {[round(v, 1) for v in values]}")
    print(f"r_drop  / standard: {ms['r_drop'] / ms['standard']:.2f}x")
    print(f"lr_drop / standard: {ms['lr_drop'] / ms['standard']:.2f}x  (target <= 2.2)")
    print(f"two passes / concatenated, r_drop:  {ms['r_drop 2x'] / ms['r_drop']:.2f}x")
    print(f"two passes / concatenated, lr_drop: {ms['lr_drop 2x'] / ms['lr_drop']:.2f}x  "
          "(GPU target >= 1.2)")
    print(conditions.report())


if __name__ == "__main__":
    main()
