"""Build Optuna samplers and pruners from their specs."""

from __future__ import annotations

from typing import Any
import warnings

import numpy as np
import optuna

from framework.config.sections import SearchSpec
from framework.tuning.space import grid


def sampler_seed(seed: int | None, trials_before: int, worker: int) -> int | None:
    """The sampler seed of one worker of one invocation: reproducible, and new each time.

    A sampler re-created with the study's own seed would propose the same first points again
    when a study is continued, run in parallel or restarted after a crash. Mixing in the trials
    already in the study and the worker's index gives each invocation and worker its own
    stream; a fresh study's first worker keeps the seed as written, so its results repeat.

    Args:
        seed: ``search.sampler.seed`` (None: not seeded).
        trials_before: trials in the study, in any state, when the worker opened it.
        worker: the worker's index among the local workers (0 for a single process).
    """
    if seed is None:
        return None
    if trials_before == 0 and worker == 0:
        return seed
    # SeedSequence mixes the three numbers into a well-spread 32-bit seed (what numpy's
    # RandomState, used by Optuna's samplers, accepts).
    entropy = [abs(seed), trials_before, worker, int(seed < 0)]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def make_sampler(search: SearchSpec, seed: int | None = None) -> optuna.samplers.BaseSampler:
    """The sampler of ``search``, seeded with ``seed`` (default: the spec's own seed)."""
    spec = search.sampler
    seed = spec.seed if seed is None else seed
    samplers = optuna.samplers
    if spec.name == "tpe":
        with warnings.catch_warnings():  # `group` is marked experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # constant_liar keeps parallel workers from proposing the same point (Optuna 5's
            # default, stated because the framework relies on it).
            return samplers.TPESampler(seed=seed, n_startup_trials=spec.n_startup_trials,
                                       multivariate=spec.multivariate, group=spec.group,
                                       constant_liar=True)
    if spec.name == "random":
        return samplers.RandomSampler(seed=seed)
    if spec.name == "grid":
        # A trial's grid id indexes the grid in the order the seed shuffles it, and the ids are
        # shared through the storage: every worker must shuffle alike, or two of them run the
        # same point (as Optuna's docs warn). Only the pick among points left may differ.
        sampler = samplers.GridSampler(grid(search.space), seed=spec.seed)
        if seed != spec.seed:
            sampler.reseed_rng()
        return sampler
    if spec.name == "cmaes":
        return samplers.CmaEsSampler(seed=seed)
    if spec.name == "gp":
        return samplers.GPSampler(seed=seed)
    if spec.name == "nsgaii":
        return samplers.NSGAIISampler(population_size=spec.population_size, seed=seed)
    raise ValueError(f"unknown sampler {spec.name!r}")


def make_pruner(search: SearchSpec, max_steps: int) -> optuna.pruners.BasePruner:
    """The pruner of ``search``; ``max_steps`` is Hyperband's largest resource."""
    with warnings.catch_warnings():  # Optuna marks the Wilcoxon and patient pruners experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return build_pruner(search.pruner, max_steps)


def build_pruner(spec: Any, max_steps: int) -> optuna.pruners.BasePruner:
    """The Optuna pruner for one pruner spec (``patient`` wraps another one)."""
    pruners = optuna.pruners
    if spec.name == "median":
        return pruners.MedianPruner(n_startup_trials=spec.n_startup_trials,
                                    n_warmup_steps=spec.n_warmup_steps,
                                    interval_steps=spec.interval_steps)
    if spec.name == "percentile":
        return pruners.PercentilePruner(spec.percentile, n_startup_trials=spec.n_startup_trials,
                                        n_warmup_steps=spec.n_warmup_steps,
                                        interval_steps=spec.interval_steps)
    if spec.name == "hyperband":
        return pruners.HyperbandPruner(min_resource=spec.min_resource, max_resource=max_steps,
                                       reduction_factor=spec.reduction_factor)
    if spec.name == "successive_halving":
        return pruners.SuccessiveHalvingPruner(min_resource=spec.min_resource,
                                               reduction_factor=spec.reduction_factor)
    if spec.name == "wilcoxon":
        return pruners.WilcoxonPruner(p_threshold=spec.p_threshold,
                                      n_startup_steps=spec.n_startup_steps)
    if spec.name == "threshold":
        return pruners.ThresholdPruner(lower=spec.lower, upper=spec.upper,
                                       n_warmup_steps=spec.n_warmup_steps,
                                       interval_steps=spec.interval_steps)
    if spec.name == "patient":
        wrapped = None if spec.wrapped is None else build_pruner(spec.wrapped, max_steps)
        return pruners.PatientPruner(wrapped, patience=spec.patience, min_delta=spec.min_delta)
    return pruners.NopPruner()
