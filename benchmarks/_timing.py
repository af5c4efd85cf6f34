"""What every benchmark here shares: warm-up, alternating repeats, medians, and the conditions.

Variants run in rounds, each round in a rotated order (A B C, B C A, C A B, ...), after untimed
warm-up runs, so that load from other jobs and the order itself slow every variant alike; the
figures are medians over the rounds. Every benchmark prints the conditions it ran under: torch
version, threads, cores, the CPU and the load average at its start and end (another job's load
shows in absolute times much more than in the ratios; another CPU model, as cloud machines give
from one day to the next, can change even the ratios).
"""

from __future__ import annotations

from collections.abc import Callable
import os
import platform
import statistics
import time


def load_average() -> float:
    """The 1-minute load average (0 where the platform has none)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0


class Conditions:
    """The machine and library state a benchmark ran under; print it with :meth:`report`."""

    def __init__(self, threads: int | None = None) -> None:
        """Record the state at the start.

        Args:
            threads: the torch threads the measured work uses, when not this process's (child
                processes started with their own count).
        """
        import torch

        from framework.training.device import cpu_name

        self.torch = torch.__version__
        self.threads = threads or torch.get_num_threads()
        self.cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
            os.cpu_count() or 1)
        self.cpu = cpu_name()
        self.load_start = load_average()
        self.started = time.perf_counter()

    def report(self) -> str:
        """One line: versions, threads, cores, CPU, load average at the start and now, duration."""
        cuda = ""
        import torch

        if torch.cuda.is_available():
            cuda = f", {torch.cuda.get_device_name()}"
        return (f"conditions: torch {self.torch}, python {platform.python_version()}, "
                f"{self.threads} torch thread(s), {self.cores} cores of {self.cpu}{cuda}; "
                f"load average {self.load_start:.1f} at start, {load_average():.1f} at end; "
                f"{time.perf_counter() - self.started:.0f} s")


def alternate(variants: dict[str, Callable[[], float]], repeats: int, warmup: int = 1
              ) -> dict[str, list[float]]:
    """Each variant's measurements over ``repeats`` rounds, after ``warmup`` untimed rounds.

    Args:
        variants: name -> a callable that runs the variant once and returns its measurement
            (seconds per step, per run...). Each callable does the same work on every call.
        repeats: timed rounds; every round runs every variant once, in a rotated order.
        warmup: untimed rounds first (allocator, kernel choice, caches, compilation).
    """
    names = list(variants)
    for _ in range(warmup):
        for name in names:
            variants[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(repeats):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(variants[name]())
    return times


def medians(times: dict[str, list[float]]) -> dict[str, float]:
    return {name: statistics.median(values) for name, values in times.items()}


def print_times(times: dict[str, list[float]], unit: str = "ms/step", scale: float = 1e3,
                width: int = 24) -> dict[str, float]:
    """Print each variant's median and runs (scaled, e.g. seconds to ms); return the medians."""
    median = medians(times)
    for name, values in times.items():
        runs = [round(v * scale, 2) for v in values]
        print(f"  {name:<{width}} median {median[name] * scale:9.2f} {unit}   runs {runs}")
    return median


def seconds(run: Callable[[], object]) -> float:
    """Wall-clock seconds of one call of ``run``."""
    start = time.perf_counter()
    run()
    return time.perf_counter() - start
