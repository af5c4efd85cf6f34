"""Training steps of a study's first trial, eager against ``train.compile``, on the CPU or a GPU.

Runs the framework's training loop (no MLflow, no Optuna: the loop alone) on the study's model,
data, optimizer and dropout, for ``--steps`` steps, once eager and once compiled (``--repeats``
alternating rounds), each after an untimed warm-up run of ``--warmup-steps`` that fills the
compiler's caches. Printed per variant: steady-state milliseconds per step (the second half of
the run, the device synchronised at both ends), the whole run's seconds (compilation included),
peak GPU memory, and the final validation loss; then the steps-per-second ratio.

    .venv/bin/python benchmarks/compiled_steps.py studies/dynamic_dropout_gpu.yaml --steps 500
    .venv/bin/python benchmarks/compiled_steps.py studies/dynamic_dropout.yaml --steps 150 \\
        --override train.device=cpu
"""

from __future__ import annotations

import argparse
from pathlib import Path
import statistics
import time
from typing import Any

from _timing import Conditions
from _timing import alternate
import torch

from framework import registry
from framework.config import load_spec
from framework.strategies.stack import StrategyStack
from framework.training.device import configure_device
from framework.training.device import pick_device
from framework.training.device import seed_everything
from framework.training.loop import train
from framework.training.run import load_dataset


class SteadyClock:
    """Observer timing the second half of the run's steps, the device synchronised."""

    def __init__(self, device: torch.device, steps: int):
        self.device, self.half, self.steps = device, steps // 2, steps
        self.start = self.end = 0.0

    def _now(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()

    def on_step(self, step: int, total_steps: int) -> None:
        if step + 1 == self.half:
            self.start = self._now()
        elif step + 1 == self.steps:
            self.end = self._now()

    def on_eval(self, step: int, metrics: dict[str, float]) -> None: ...

    def ms_per_step(self) -> float:
        return (self.end - self.start) / (self.steps - self.half) * 1e3


def run_once(spec: Any, dataset: Any, device: torch.device, record: dict[str, list[float]]
             ) -> float:
    """Train once; record steady ms/step, wall seconds, peak GiB and val loss; return ms/step."""
    if spec.train.compile:
        torch._dynamo.reset()  # each trial compiles anew (from the compiler's caches)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    seed_everything(spec.seed)
    model = registry.create_model(spec.model, dataset.info)
    clock = SteadyClock(device, spec.train.max_steps)
    start = time.perf_counter()
    result = train(model, dataset, spec.train, StrategyStack.from_configs(spec.dropout),
                   device=device, seed=spec.seed, observer=clock)
    record["wall s"].append(time.perf_counter() - start)
    record["ms/step"].append(clock.ms_per_step())
    record["peak GiB"].append(torch.cuda.max_memory_allocated() / 2**30
                              if device.type == "cuda" else float("nan"))
    record["val loss"].append(result.history[-1]["val_loss"])
    return record["ms/step"][-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--warmup-steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--override", action="append", default=[],
                        help="a dotted override of the study (repeatable)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    conditions = Conditions()
    common = ["search.space={}", *args.override]
    specs = {}
    for name, compiled in (("eager", False), ("compiled", True)):
        for steps, key in ((args.steps, name), (args.warmup_steps, f"{name} warm-up")):
            specs[key] = load_spec(args.study, [
                *common, f"train.max_steps={steps}", f"train.eval_every={steps}",
                f"train.compile={str(compiled).lower()}"]).spec
    spec = specs["eager"]
    device = pick_device(spec.train.device)
    configure_device(device)
    dataset = load_dataset(spec)
    records = {name: {"ms/step": [], "wall s": [], "peak GiB": [], "val loss": []}
               for name in ("eager", "compiled")}
    scratch: dict[str, list[float]] = {k: [] for k in records["eager"]}
    for name in ("eager", "compiled"):  # warm-up: kernels, allocator, the compiler's caches
        run_once(specs[f"{name} warm-up"], dataset, device, scratch)
    alternate({name: (lambda name=name: run_once(specs[name], dataset, device, records[name]))
               for name in records}, args.repeats, warmup=0)
    print(f"{args.study.name}: {spec.model.name} {getattr(spec.model, 'n_layer', '?')} layers x "
          f"{getattr(spec.model, 'n_embd', '?')}, batch {spec.train.batch_size}, dropout "
          f"{[d.name for d in spec.dropout]}, {args.steps} steps on {device}; medians of "
          f"{args.repeats} alternating run(s) after a warm-up run of {args.warmup_steps} steps")
    median = {name: {k: statistics.median(v) for k, v in record.items()}
              for name, record in records.items()}
    for name, values in median.items():
        print(f"  {name:<9} {values['ms/step']:8.2f} ms/step steady ({1e3 / values['ms/step']:7.2f}"
              f" steps/s)   {values['wall s']:7.1f} s the run (compilation included)   peak "
              f"{values['peak GiB']:.2f} GiB   val loss {values['val loss']:.4f}")
    print(f"steps/s, compiled / eager: "
          f"{median['eager']['ms/step'] / median['compiled']['ms/step']:.3f} steady, "
          f"{median['eager']['wall s'] / median['compiled']['wall s']:.3f} over the whole run")
    print(conditions.report())


if __name__ == "__main__":
    main()
