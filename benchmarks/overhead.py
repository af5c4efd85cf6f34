"""Framework overhead: the framework's training loop against a plain PyTorch loop.

**Parity** (always). Both sides do the same work: the same GPT on the same batches, the same
optimizer and learning-rate schedule, dropout on the same sites (the study's strategy's kinds:
the quickstart leaves attention out), evaluation on the same batches, and a checkpoint of the
training state after every evaluation (the framework's own, uploaded to its MLflow run; a
``torch.save`` of model and optimizer in the plain loop, as nanoGPT does). The framework side
also logs every evaluation to MLflow (a real SQLite store) and reports to a real Optuna trial.
Target: the framework within 3% of the plain loop.

**Compiled** (``--compiled``). nanoGPT's CPU settings (``plain_gpt.STUDY``: 4 layers x 128,
context 64, batch 12, dropout on every site): the framework with ``train.compile`` (and the
fused AdamW it uses wherever torch has it, logging and checkpoints on) against the plain eager
loop as nanoGPT runs it on a CPU (multi-tensor AdamW, eager). Two pairs: a fixed rate of 0.2,
and a linear decay 0.2 -> 0 over the run (the plain loop sets the same rate every step). Every
compiled run builds and compiles a fresh model, so its time includes the compilations (the
first round, untimed, fills the compiler's caches). Targets on the 2-core CPU: >= 1.10x the plain
loop's steps per second at 0.2, >= 1.05x during the decay.

Variants alternate after a warm-up round (``benchmarks/_timing.py``); the figures are medians of
seconds per step over whole runs (evaluations and checkpoints included), and their ratios.

    .venv/bin/python benchmarks/overhead.py [--steps 150] [--repeats 3] [--threads N]
    .venv/bin/python benchmarks/overhead.py --compiled [--compiled-steps 150]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
import tempfile
import time
from typing import Any

from _timing import Conditions
from _timing import alternate
from _timing import print_times
import optuna
from plain_gpt import write_study
import torch
from torch import nn

from framework import registry
from framework.config import load_spec
from framework.models.sites import find_sites
from framework.strategies.stack import StrategyStack
from framework.tracking import Locations
from framework.tracking import Tracker
from framework.training.device import seed_everything
from framework.training.loop import train
from framework.training.optim import lr_at
from framework.training.optim import make_optimizer
from framework.training.run import load_dataset
from framework.tuning.objective import QuietDisplay
from framework.tuning.objective import _Checkpointer
from framework.tuning.objective import _TrialObserver


STUDIES = Path(__file__).resolve().parents[1] / "studies"
Rate = Callable[[int], float]
"""The dropout rate at a step."""


def rate_of(spec: Any) -> tuple[Rate, list[str]]:
    """The rate schedule of the spec's one strategy and the site kinds it claims."""
    strategy = registry.create_strategy(spec.dropout[0])
    return (lambda step: strategy.rate(step, spec.train.max_steps)), sorted(
        spec.dropout[0].claimed_kinds())


def nanogpt_adamw(model: nn.Module, spec: Any) -> torch.optim.AdamW:
    """The optimizer nanoGPT's ``configure_optimizers`` makes on a CPU: decay on 2-D weights,
    fused only on CUDA (so the default multi-tensor AdamW here)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": spec.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=spec.lr, betas=(spec.beta1, spec.beta2))


def plain_loop(spec: Any, dataset: Any, folder: Path, nanogpt: bool = False) -> float:
    """A loop written directly against torch; returns seconds per step (evaluation and
    checkpoints included).

    Args:
        nanogpt: nanoGPT's CPU optimizer instead of the framework's.
    """
    seed_everything(0)
    model = registry.create_model(spec.model, dataset.info)
    rate, kinds = rate_of(spec)
    sites = find_sites(model, kinds)
    optimizer = nanogpt_adamw(model, spec.train) if nanogpt else make_optimizer(model, spec.train)
    generator = torch.Generator().manual_seed(0)
    train_spec = spec.train
    model.train()
    start = time.perf_counter()
    for step in range(train_spec.max_steps):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, train_spec)
        for site in sites:
            site.p = rate(step)
        loss = model(dataset.train_batch(train_spec.batch_size, generator)).loss
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), train_spec.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        done = step + 1
        if done % train_spec.eval_every == 0 or done == train_spec.max_steps:
            model.eval()
            with torch.no_grad():
                for split in ("train", "val"):
                    for batch in dataset.eval_batches(split, train_spec.batch_size,
                                                      train_spec.eval_batches):
                        model(batch).loss.item()
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "step": done}, folder / "ckpt.pt")
            model.train()
    return (time.perf_counter() - start) / train_spec.max_steps


class Framework:
    """The framework's loop in a real trial: MLflow logging, Optuna reports, checkpoints."""

    def __init__(self, home: Path):
        locations = Locations.resolve(home)
        locations.prepare()
        self.tracker = Tracker(locations)
        self.experiment = self.tracker.experiment_id("overhead-benchmark")
        self.folder = home

    def run(self, spec: Any, dataset: Any) -> float:
        """One trial's training; seconds per step."""
        seed_everything(0)
        model = registry.create_model(spec.model, dataset.info)
        trial = optuna.create_study().ask()
        run_id = self.tracker.start_run(self.experiment, "bench", {})
        observer = _TrialObserver(trial, spec, self.tracker, run_id, QuietDisplay())
        with tempfile.TemporaryDirectory(dir=self.folder) as tmp:
            checkpoint = _Checkpointer(self.tracker, run_id, Path(tmp) / "checkpoint")
            start = time.perf_counter()
            train(model, dataset, spec.train, StrategyStack.from_configs(spec.dropout),
                  device=torch.device("cpu"), seed=0, observer=observer, checkpoint=checkpoint)
            seconds = time.perf_counter() - start
        self.tracker.end_run(run_id, "FINISHED")
        return seconds / spec.train.max_steps


def parity(args: argparse.Namespace, framework: Framework, folder: Path) -> None:
    spec = load_spec(args.study, [f"train.max_steps={args.steps}",
                                  f"train.eval_every={args.eval_every}"]).spec
    dataset = load_dataset(spec)
    times = alternate({
        "plain loop": lambda: plain_loop(spec, dataset, folder),
        "framework loop": lambda: framework.run(spec, dataset),
    }, args.repeats)
    _, kinds = rate_of(spec)
    print(f"\nparity: {args.study.name}: {spec.model.n_layer} layers x {spec.model.n_embd}, batch "
          f"{spec.train.batch_size} x {spec.model.block_size}, {spec.dropout[0].name} dropout "
          f"on {', '.join(kinds)}, {args.steps} steps (evaluation every {args.eval_every}, "
          f"checkpoint after each) x {args.repeats} runs each, alternating after a warm-up round")
    median = print_times(times)
    print(f"overhead ratio (framework / plain): "
          f"{median['framework loop'] / median['plain loop']:.3f}  (target <= 1.03)")


def compiled(args: argparse.Namespace, framework: Framework, folder: Path) -> None:
    base = [f"train.max_steps={args.compiled_steps}", f"train.eval_every={args.eval_every}",
            "search.space={}"]
    study = write_study(folder)
    fixed = load_spec(study, [*base, "dropout=[{name: standard, p: 0.2}]"]).spec
    decay = load_spec(study, [*base, "dropout=[{name: linear_decay, p_start: 0.2, p_end: 0.0}]"]
                      ).spec
    on = {"train.compile": True}
    fixed_c = fixed.model_copy(update={"train": fixed.train.model_copy(update=on)})
    decay_c = decay.model_copy(update={"train": decay.train.model_copy(update=on)})
    dataset = load_dataset(fixed)

    def fresh(spec: Any) -> float:
        torch._dynamo.reset()  # a new trial compiles anew (from the compiler's caches)
        return framework.run(spec, dataset)

    times = alternate({
        "plain eager, p=0.2": lambda: plain_loop(fixed, dataset, folder, nanogpt=True),
        "framework eager, p=0.2": lambda: framework.run(fixed, dataset),
        "framework compiled, p=0.2": lambda: fresh(fixed_c),
        "plain eager, decay": lambda: plain_loop(decay, dataset, folder, nanogpt=True),
        "framework compiled, decay": lambda: fresh(decay_c),
    }, args.repeats)
    print(f"\ncompiled: nanoGPT's CPU settings (4 layers x 128, batch 12 x 64, dropout on every "
          f"site), {args.compiled_steps} steps x {args.repeats} runs each, alternating after a "
          "warm-up round; plain = eager, multi-tensor AdamW (nanoGPT on a CPU); framework = "
          "fused AdamW, MLflow logging, checkpoints")
    median = print_times(times, width=27)
    speed = {name: 1 / value for name, value in median.items()}
    print(f"steps/s, framework compiled / plain eager at p=0.2: "
          f"{speed['framework compiled, p=0.2'] / speed['plain eager, p=0.2']:.3f} "
          "(target >= 1.10)")
    print(f"steps/s, framework eager / plain eager at p=0.2:    "
          f"{speed['framework eager, p=0.2'] / speed['plain eager, p=0.2']:.3f} "
          "(fused AdamW alone)")
    print(f"steps/s, framework compiled / plain eager, decay:  "
          f"{speed['framework compiled, decay'] / speed['plain eager, decay']:.3f} "
          "(target >= 1.05; compilations included)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", type=Path, default=STUDIES / "quickstart.yaml")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--compiled", action="store_true", help="also the compiled comparison")
    parser.add_argument("--compiled-only", action="store_true", help="only that comparison")
    parser.add_argument("--compiled-steps", type=int, default=150)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    conditions = Conditions()
    with tempfile.TemporaryDirectory() as home:
        framework = Framework(Path(home))
        if not args.compiled_only:
            parity(args, framework, Path(home))
        if args.compiled or args.compiled_only:
            compiled(args, framework, Path(home))
    print(conditions.report())


if __name__ == "__main__":
    main()
