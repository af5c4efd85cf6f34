"""Framework overhead: the framework's training loop against a plain PyTorch loop.

Both train the same GPT on the same batches with the same optimizer, schedule, dropout and
evaluation schedule; the framework run also logs every evaluation to MLflow (a real SQLite store)
and reports to a real Optuna trial. Runs alternate (plain, framework, plain, ...) so that a noisy
machine slows both alike; the printed figure is the ratio of median seconds per step.
Target: the framework within 3% of the plain loop.

    .venv/bin/python benchmarks/overhead.py [--steps 150] [--repeats 3]
"""

from __future__ import annotations

import argparse
from pathlib import Path
import statistics
import tempfile
import time

import optuna
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
from framework.tuning.objective import _TrialObserver


STUDY = Path(__file__).resolve().parents[1] / "studies" / "quickstart.yaml"


def plain_loop(spec, dataset, p: float) -> float:
    """nanoGPT-style loop written directly against torch; returns seconds per step."""
    seed_everything(0)
    model = registry.create_model(spec.model, dataset.info)
    for site in find_sites(model):
        site.p = p
    optimizer = make_optimizer(model, spec.train)
    generator = torch.Generator().manual_seed(0)
    model.train()
    start = time.perf_counter()
    for step in range(spec.train.max_steps):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, spec.train)
        loss = model(dataset.train_batch(spec.train.batch_size, generator)).loss
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), spec.train.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if (step + 1) % spec.train.eval_every == 0:
            model.eval()
            with torch.no_grad():
                for split in ("train", "val"):
                    for batch in dataset.eval_batches(split, spec.train.batch_size,
                                                      spec.train.eval_batches):
                        model(batch).loss.item()
            model.train()
    return (time.perf_counter() - start) / spec.train.max_steps


def framework_loop(spec, dataset, tracker: Tracker, experiment: str) -> float:
    """The framework's loop with MLflow logging and Optuna reporting on; seconds per step."""
    seed_everything(0)
    model = registry.create_model(spec.model, dataset.info)
    trial = optuna.create_study().ask()
    run_id = tracker.start_run(experiment, "bench", {})
    observer = _TrialObserver(trial, spec, tracker, run_id, QuietDisplay())
    start = time.perf_counter()
    train(model, dataset, spec.train, StrategyStack.from_configs(spec.dropout),
          device=torch.device("cpu"), seed=0, observer=observer)
    seconds = time.perf_counter() - start
    tracker.end_run(run_id, "FINISHED")
    return seconds / spec.train.max_steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = load_spec(STUDY, [f"train.max_steps={args.steps}", "train.eval_every=50"]).spec
    dataset = load_dataset(spec)
    with tempfile.TemporaryDirectory() as home:
        locations = Locations.resolve(home)
        locations.prepare()
        tracker = Tracker(locations)
        experiment = tracker.experiment_id("overhead-benchmark")
        plain, framed = [], []
        for _ in range(args.repeats):
            plain.append(plain_loop(spec, dataset, spec.dropout[0].p))
            framed.append(framework_loop(spec, dataset, tracker, experiment))
    p, f = statistics.median(plain), statistics.median(framed)
    print(f"model: {spec.model.n_layer} layers x {spec.model.n_embd}, batch "
          f"{spec.train.batch_size} x {spec.model.block_size}, dropout {spec.dropout[0].p}, "
          f"{args.steps} steps x {args.repeats} runs each, alternating")
    for label, median, runs in (("plain loop", p, plain), ("framework loop", f, framed)):
        ms = [round(x * 1000, 1) for x in runs]
        print(f"{label:15s} median {median * 1000:7.2f} ms/step  runs {ms}")
    print(f"overhead ratio (framework / plain): {f / p:.3f}  (target <= 1.03)")


if __name__ == "__main__":
    main()
