"""A plain, nanoGPT-style training script: the whole-process reference of ``process.py``.

One process that does what nanoGPT's ``train.py`` does on a CPU with its shakespeare_char recipe,
and nothing more: read the characters, build the GPT, train with AdamW (linear warm-up, cosine
decay, gradient clipping), evaluate on fixed batches of both splits every ``--eval-every`` steps
and after the last, save a checkpoint (model and optimizer) whenever the validation loss
improves, print one line per evaluation. The model is the framework's GPT class (the same
network as the framework trains, from ``framework/models/gpt.py`` alone); no spec validation,
no stores, no tracking. Written for this project after nanoGPT's loop, not copied from it.

    .venv/bin/python benchmarks/plain_gpt.py --steps 300 --threads 2 --out /tmp/plain
"""

from __future__ import annotations

import argparse
import gzip
import math
from pathlib import Path
import time
from types import SimpleNamespace

import numpy as np
import torch
from torch import nn

from framework.models.gpt import GPT
from framework.models.sites import find_sites


TEXT = Path(__file__).resolve().parents[1] / "framework" / "data" / "files" / \
    "tinyshakespeare.txt.gz"
STUDY = """\
# nanoGPT's CPU recipe for shakespeare_char: what plain_gpt.py runs with its defaults.
name: nanogpt_cpu
seed: 0
model: {name: gpt, n_layer: 4, n_head: 4, n_embd: 128, block_size: 64}
data: {name: shakespeare_char}
train: {max_steps: 300, batch_size: 12, lr: 1.0e-3, min_lr: 1.0e-4, warmup_steps: 100,
        weight_decay: 0.1, beta1: 0.9, beta2: 0.99, grad_clip: 1.0, eval_every: 250,
        eval_batches: 20}
dropout:
  - {name: standard, p: 0.2}
search: {n_trials: 1, sampler: {name: random, seed: 0}, pruner: {name: none}}
"""
"""The same settings as a study, for the framework's side of the comparisons (the benchmarks
do not follow the project's study files, which change with the experiments)."""


def write_study(folder: Path) -> Path:
    """:data:`STUDY` as ``folder/nanogpt_cpu.yaml``."""
    path = folder / "nanogpt_cpu.yaml"
    path.write_text(STUDY)
    return path


class Windows:
    """Random (B, T) windows of the encoded text; targets shifted by one."""

    def __init__(self, data: torch.Tensor, block: int):
        self.data, self.block = data, block
        self.offsets = torch.arange(block)

    def batch(self, size: int, generator: torch.Generator) -> SimpleNamespace:
        starts = torch.randint(len(self.data) - self.block - 1, (size,), generator=generator)
        index = starts[:, None] + self.offsets
        return SimpleNamespace(inputs=self.data[index], targets=self.data[index + 1], mask=None)


def load(block: int) -> tuple[Windows, Windows, int]:
    """Train and val windows (90/10) of Tiny Shakespeare's characters, and the vocabulary size."""
    raw = np.frombuffer(gzip.decompress(TEXT.read_bytes()).decode("utf-8").encode("utf-32-le"),
                        dtype=np.uint32)
    chars, ids = np.unique(raw, return_inverse=True)
    data = torch.from_numpy(ids.astype(np.int64))
    n = int(len(data) * 0.9)
    return Windows(data[:n], block), Windows(data[n:], block), len(chars)


def learning_rate(step: int, args: argparse.Namespace) -> float:
    if step < args.warmup:
        return args.lr * (step + 1) / (args.warmup + 1)
    progress = min(1.0, (step - args.warmup) / max(1, args.steps - args.warmup))
    return args.min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (args.lr - args.min_lr)


@torch.no_grad()
def estimate_loss(model: nn.Module, splits: dict[str, Windows], args: argparse.Namespace
                  ) -> dict[str, float]:
    model.eval()
    losses = {}
    for name, windows in splits.items():
        generator = torch.Generator().manual_seed(1234)  # the same batches every evaluation
        losses[name] = sum(model(windows.batch(args.batch, generator)).loss.item()
                           for _ in range(args.eval_batches)) / args.eval_batches
    model.train()
    return losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--block", type=int, default=64)
    parser.add_argument("--batch", type=int, default=12)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--min-lr", type=float, default=1e-4)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--eval-batches", type=int, default=20)
    parser.add_argument("--fused", action="store_true",
                        help="fused AdamW (nanoGPT fuses only on CUDA)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path("plain-gpt-out"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    train_windows, val_windows, vocab = load(args.block)
    config = SimpleNamespace(n_layer=args.layers, n_head=args.heads, n_embd=args.width,
                             block_size=args.block, bias=False)
    model = GPT(config, {"vocab_size": vocab})
    for site in find_sites(model):
        site.p = args.dropout
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [{"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
         {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}],
        lr=args.lr, betas=(0.9, 0.99), fused=args.fused or None)
    args.out.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(0)
    best = math.inf
    model.train()
    start = time.perf_counter()
    for step in range(args.steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, args)
        model(train_windows.batch(args.batch, generator)).loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        done = step + 1
        if done % args.eval_every == 0 or done == args.steps:
            losses = estimate_loss(model, {"train": train_windows, "val": val_windows}, args)
            print(f"step {done}: train {losses['train']:.4f}, val {losses['val']:.4f}, "
                  f"{(time.perf_counter() - start) / done * 1e3:.1f} ms/step", flush=True)
            if losses["val"] < best:
                best = losses["val"]
                torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                            "step": done, "val_loss": best}, args.out / "ckpt.pt")


if __name__ == "__main__":
    main()
