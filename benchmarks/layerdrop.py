"""LayerDrop speed: training steps at p=0.5 against p=0, and inference at half against full depth.

Fan, Grave and Joulin (ICLR 2020): a layer skipped in training runs no forward and no backward,
so at rate p a step costs about (1 - p) of the layers' compute; a model pruned to half its depth
at inference costs about half. Both pairs run side by side in one process, alternating
(A, B, A, B, ...) so that load from other jobs on a shared machine slows both alike; the figures
are medians over the repeats. Targets: both ratios at least 1.8x.

    .venv/bin/python benchmarks/layerdrop.py [--n-layer 6] [--n-embd 192] [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import time

from _timing import Conditions
import torch

from framework.config.sections import TrainSpec
from framework.data.base import Batch
from framework.layers.layerdrop import layer_rates
from framework.layers.layerdrop import wrap_layer_stack
from framework.models.gpt import GPT
from framework.models.pruning import every_other
from framework.models.pruning import keep_layers
from framework.models.specs import GPTSpec
from framework.training.optim import make_optimizer


VOCAB = 65  # Tiny Shakespeare's characters


def make_gpt(args: argparse.Namespace, p: float) -> GPT:
    torch.manual_seed(0)
    spec = GPTSpec(n_layer=args.n_layer, n_head=args.n_head, n_embd=args.n_embd,
                   block_size=args.block_size)
    model = GPT(spec, {"vocab_size": VOCAB})
    wrap_layer_stack(model, layer_rates(args.n_layer, p))
    return model


def batches(args: argparse.Namespace, n: int) -> list[Batch]:
    generator = torch.Generator().manual_seed(1)
    out = []
    for _ in range(n):
        x = torch.randint(0, VOCAB, (args.batch_size, args.block_size), generator=generator)
        out.append(Batch(x, torch.roll(x, -1, 1)))
    return out


def time_training(model: GPT, optimizer: torch.optim.Optimizer, data: list[Batch]) -> float:
    """Seconds per optimizer step (forward, backward, AdamW) over ``data``."""
    model.train()
    start = time.perf_counter()
    for batch in data:
        model(batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return (time.perf_counter() - start) / len(data)


@torch.no_grad()
def time_inference(model: torch.nn.Module, data: list[Batch]) -> float:
    """Seconds per forward pass in eval mode over ``data``."""
    model.eval()
    start = time.perf_counter()
    for batch in data:
        model(batch)
    return (time.perf_counter() - start) / len(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-layer", type=int, default=6)
    parser.add_argument("--n-head", type=int, default=6)
    parser.add_argument("--n-embd", type=int, default=192)
    parser.add_argument("--block-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20, help="steps (batches) per timed run")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--p", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = batches(args, args.steps)
    conditions = Conditions()
    train_spec = TrainSpec()
    runs = {}
    for p in (0.0, args.p):
        model = make_gpt(args, p)
        runs[p] = (model, make_optimizer(model, train_spec))
    full = make_gpt(args, 0.0).eval()
    half = keep_layers(full, every_other(args.n_layer, max(1, args.n_layer // 2)))
    seconds: dict[str, list[float]] = {"train p=0": [], f"train p={args.p}": [],
                                       "infer full": [], "infer half": []}
    torch.manual_seed(0)
    for model, optimizer in runs.values():  # warm-up: allocation and kernel choice
        time_training(model, optimizer, data[:2])
    time_inference(full, data[:2])
    time_inference(half, data[:2])
    for _ in range(args.repeats):
        seconds["train p=0"].append(time_training(*runs[0.0], data))
        seconds[f"train p={args.p}"].append(time_training(*runs[args.p], data))
        seconds["infer full"].append(time_inference(full, data))
        seconds["infer half"].append(time_inference(half, data))
    median = {name: statistics.median(values) for name, values in seconds.items()}
    print(f"GPT {args.n_layer} layers x {args.n_embd} wide, batch {args.batch_size} x "
          f"{args.block_size} tokens, {torch.get_num_threads()} threads; medians of "
          f"{args.repeats} alternating runs of {args.steps} steps")
    for name, value in median.items():  # every round too: a target's interval pairs rounds
        rounds = ", ".join(f"{1000 * v:.2f}" for v in seconds[name])
        print(f"  {name:<14} median {1000 * value:8.2f} ms/step   runs [{rounds}]")
    train_ratio = median["train p=0"] / median[f"train p={args.p}"]
    infer_ratio = median["infer full"] / median["infer half"]
    print(f"training step speedup at p={args.p}: {train_ratio:.2f}x (target >= 1.8x)")
    print(f"inference speedup at half depth ({len(half.layers)} of {args.n_layer} layers): "
          f"{infer_ratio:.2f}x (target >= 1.8x)")
    print(conditions.report())


if __name__ == "__main__":
    main()
