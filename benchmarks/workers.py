"""Parallel workers: trials per hour with 1 and 2 local workers, and the framework's own cost.

**Workers.** The same small study from scratch with one worker and with two (each worker gets
cores / workers torch threads), alternating 1, 2, 2, 1, ... over ``--repeats`` rounds after an
untimed warm-up command; printed are the medians of trials per hour over the whole command
(process start-up included) and in steady state (first trial start to last trial end, as the
study records them), and their ratio (target: 2 workers >= 1.5x on the 2-core machine).

**Cost per trial.** In-process, trials of about 30 s: each trial's wall time split into its
training steps (the loop's ``train_time``: forward, backward, optimizer; no evaluation), its
evaluations, and everything else, which is the framework's own cost (set-up, storage and
tracking calls, checkpoints, the model logged to MLflow, the inference-speed pass when on).
Target: the framework's own cost under 2% of a 30 s trial.

    .venv/bin/python benchmarks/workers.py [--trials 8] [--steps 150] [--repeats 2]
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
import contextlib
import os
from pathlib import Path
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from _timing import Conditions
from _timing import alternate
import optuna
from optuna.trial import TrialState

from framework.config import load_spec
from framework.tracking import Locations
from framework.training import loop as loop_module
from framework.tuning.study import run_study


STUDY = Path(__file__).resolve().parents[1] / "studies" / "quickstart.yaml"


def run_command(workers: int, overrides: list[str]) -> tuple[float, float]:
    """Trials per hour over the whole command and in steady state."""
    with tempfile.TemporaryDirectory() as home:
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "framework.cli", "run", str(STUDY), *overrides,
             "--workers", str(workers), "--home", home],
            check=True, stdout=subprocess.DEVNULL, env={**os.environ, "COLUMNS": "200"},
        )
        seconds = time.perf_counter() - start
        study = optuna.load_study(study_name="quickstart", storage=f"sqlite:///{home}/optuna.db")
        trials = study.get_trials(states=(TrialState.COMPLETE,))
    span = max(t.datetime_complete for t in trials) - min(t.datetime_start for t in trials)
    return len(trials) * 3600 / seconds, len(trials) * 3600 / span.total_seconds()


@contextlib.contextmanager
def timed_evaluations(seconds: list[float]) -> Iterator[None]:
    """Collect the wall time of every evaluation the training loop runs."""
    real = loop_module.evaluate

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            seconds.append(time.perf_counter() - start)

    loop_module.evaluate = timed
    try:
        yield
    finally:
        loop_module.evaluate = real


def cost_per_trial(steps: int, trials: int, extra: list[str]) -> dict[str, float]:
    """Median shares of a trial's wall time, and the median trial time."""
    overrides = [f"train.max_steps={steps}", f"search.n_trials={trials}", "search.space={}",
                 "search.pruner={name: none}", *extra]
    evaluations: list[float] = []
    with tempfile.TemporaryDirectory() as home, timed_evaluations(evaluations):
        spec = load_spec(STUDY, overrides)
        outcome = run_study(spec, Locations.resolve(home))
        done = outcome.study.get_trials(states=(TrialState.COMPLETE,))
    per_trial = len(evaluations) // len(done)
    shares: dict[str, list[float]] = {"training": [], "evaluation": [], "framework": []}
    for n, trial in enumerate(done):
        duration = trial.duration.total_seconds()
        training = trial.user_attrs["train_time"]
        evaluating = sum(evaluations[n * per_trial:(n + 1) * per_trial])
        shares["training"].append(training / duration)
        shares["evaluation"].append(evaluating / duration)
        shares["framework"].append((duration - training - evaluating) / duration)
    out = {name: statistics.median(values) for name, values in shares.items()}
    out["duration"] = statistics.median(t.duration.total_seconds() for t in done)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--overhead-steps", type=int, default=600)
    args = parser.parse_args()
    conditions = Conditions()
    overrides = [f"search.n_trials={args.trials}", f"train.max_steps={args.steps}",
                 "search.pruner={name: none}", "search.sampler={name: random, seed: 0}"]
    run_command(1, ["search.n_trials=1", "train.max_steps=5"])  # warm-up: caches, store template
    rates: dict[int, list[tuple[float, float]]] = {1: [], 2: []}

    def measure(workers: int) -> float:
        rates[workers].append(run_command(workers, overrides))
        return rates[workers][-1][0]

    alternate({"1 worker": lambda: measure(1), "2 workers": lambda: measure(2)}, args.repeats,
              warmup=0)
    overall = {w: statistics.median(r[0] for r in runs) for w, runs in rates.items()}
    steady = {w: statistics.median(r[1] for r in runs) for w, runs in rates.items()}
    print(f"study: quickstart GPT, {args.trials} trials x {args.steps} steps, {os.cpu_count()} "
          f"cores; medians of {args.repeats} alternating runs each")
    for workers in (1, 2):
        label = "1 worker " if workers == 1 else "2 workers"
        print(f"{label}: {overall[workers]:7.1f} trials/hour overall, {steady[workers]:7.1f} in "
              f"steady state   runs {[tuple(round(x, 1) for x in r) for r in rates[workers]]}")
    print(f"ratio (2 workers / 1 worker): {overall[2] / overall[1]:.2f} overall (process start-up "
          f"included), {steady[2] / steady[1]:.2f} in steady state  (target >= 1.5)")
    for label, extra in (("inference pass on ", []), ("inference pass off",
                                                       ["train.measure_inference=false"])):
        cost = cost_per_trial(args.overhead_steps, 3, extra)
        print(f"cost per trial ({label}), median of 3 trials of {cost['duration']:.0f} s: "
              f"training steps {cost['training'] * 100:.1f}%, evaluation "
              f"{cost['evaluation'] * 100:.1f}%, framework {cost['framework'] * 100:.2f}% "
              "(target < 2% of a 30 s trial)")
    print(conditions.report())


if __name__ == "__main__":
    main()
