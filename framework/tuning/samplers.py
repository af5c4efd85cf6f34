"""Build Optuna samplers and pruners from their specs."""

from __future__ import annotations

from typing import Any

import optuna

from framework.config.sections import SearchSpec
from framework.tuning.space import grid


def make_sampler(search: SearchSpec, seed_offset: int = 0) -> optuna.samplers.BaseSampler:
    spec = search.sampler.model_copy(
        update={"seed": None if search.sampler.seed is None else search.sampler.seed + seed_offset})
    samplers = optuna.samplers
    if spec.name == "tpe":
        # constant_liar keeps parallel workers from proposing the same point (on by default in 5).
        return samplers.TPESampler(seed=spec.seed, n_startup_trials=spec.n_startup_trials,
                                   multivariate=spec.multivariate, constant_liar=True)
    if spec.name == "random":
        return samplers.RandomSampler(seed=spec.seed)
    if spec.name == "grid":
        return samplers.GridSampler(grid(search.space), seed=spec.seed)
    if spec.name == "cmaes":
        return samplers.CmaEsSampler(seed=spec.seed)
    if spec.name == "gp":
        return samplers.GPSampler(seed=spec.seed)
    if spec.name == "nsgaii":
        return samplers.NSGAIISampler(population_size=spec.population_size, seed=spec.seed)
    raise ValueError(f"unknown sampler {spec.name!r}")


def make_pruner(search: SearchSpec, max_steps: int) -> optuna.pruners.BasePruner:
    spec: Any = search.pruner
    pruners = optuna.pruners
    if spec.name == "median":
        return pruners.MedianPruner(n_startup_trials=spec.n_startup_trials,
                                    n_warmup_steps=spec.n_warmup_steps,
                                    interval_steps=spec.interval_steps)
    if spec.name == "hyperband":
        return pruners.HyperbandPruner(min_resource=spec.min_resource, max_resource=max_steps,
                                       reduction_factor=spec.reduction_factor)
    if spec.name == "successive_halving":
        return pruners.SuccessiveHalvingPruner(min_resource=spec.min_resource,
                                               reduction_factor=spec.reduction_factor)
    return pruners.NopPruner()
