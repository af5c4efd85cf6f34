"""Parallel workers: trials per hour with 1 and 2 local workers, and the framework's own cost.

Runs the same small study twice from scratch, once with one worker and once with two (each
worker gets cores / workers torch threads), and prints trials per hour for each and the ratio
(target: 2 workers >= 1.5x on this 2-core machine). Then, in-process, it measures the per-trial
overhead of the framework (study set-up, storage and tracking calls, checkpoints) as the part of
each trial's wall time not spent in training, for trials of about 30 s (target: under 2%).

    .venv/bin/python benchmarks/workers.py [--trials 8] [--steps 150]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import statistics
import subprocess
import sys
import tempfile
import time

import optuna
from optuna.trial import TrialState

from framework.config import load_spec
from framework.tracking import Locations
from framework.training import run as training_run
from framework.tuning import objective as objective_module
from framework.tuning.study import run_study


STUDY = Path(__file__).resolve().parents[1] / "studies" / "quickstart.yaml"


def trials_per_hour(workers: int, overrides: list[str]) -> tuple[float, float]:
    """Trials per hour over the whole command (process start-up included), and in steady state
    (from the first trial's start to the last trial's end, as the study records them)."""
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


def overhead_fraction(steps: int, trials: int) -> tuple[float, float]:
    """Median share of a trial's wall time spent outside training, and the median trial time."""
    training_seconds: list[float] = []
    real = training_run.run_training

    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            training_seconds.append(time.perf_counter() - start)

    objective_module.run_training = timed
    overrides = [f"train.max_steps={steps}", f"search.n_trials={trials}", "search.space={}",
                 "search.pruner={name: none}"]
    with tempfile.TemporaryDirectory() as home:
        outcome = run_study(load_spec(STUDY, overrides), Locations.resolve(home))
        durations = [t.duration.total_seconds()
                     for t in outcome.study.get_trials(states=(TrialState.COMPLETE,))]
    objective_module.run_training = real
    shares = [(d - t) / d for d, t in zip(durations, training_seconds, strict=True)]
    return statistics.median(shares), statistics.median(durations)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--overhead-steps", type=int, default=600)
    args = parser.parse_args()
    overrides = [f"search.n_trials={args.trials}", f"train.max_steps={args.steps}",
                 "search.pruner={name: none}", "search.sampler={name: random, seed: 0}"]
    one, one_steady = trials_per_hour(1, overrides)
    two, two_steady = trials_per_hour(2, overrides)
    print(f"study: quickstart GPT, {args.trials} trials x {args.steps} steps, {os.cpu_count()} "
          "cores")
    print(f"1 worker : {one:7.1f} trials/hour overall, {one_steady:7.1f} in steady state")
    print(f"2 workers: {two:7.1f} trials/hour overall, {two_steady:7.1f} in steady state")
    print(f"ratio (2 workers / 1 worker): {two / one:.2f} overall (process start-up included), "
          f"{two_steady / one_steady:.2f} in steady state  (target >= 1.5)")
    share, duration = overhead_fraction(args.overhead_steps, 3)
    print(f"framework overhead per trial: {share * 100:.2f}% of a {duration:.0f} s trial "
          "(target < 2% of a 30 s trial)")


if __name__ == "__main__":
    main()
