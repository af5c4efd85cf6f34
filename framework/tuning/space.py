"""Suggest the search space's parameters for a trial and write them into the spec."""

from __future__ import annotations

import copy
from typing import Any

from framework.config.paths import set_path
from framework.config.space import CategoricalParam
from framework.config.space import ChoiceParam
from framework.config.space import FloatParam
from framework.config.space import IntParam


def suggest(trial: Any, space: dict[str, Any], raw: dict[str, Any],
            path_prefix: str = "", name_prefix: str = "") -> None:
    """Suggest every parameter of ``space`` on ``trial`` and set it into ``raw`` in place.

    A ``choice`` suggests its option's name, puts that option's value at its path and then
    suggests only that option's sub-space, whose parameter names carry the option
    (``dropout.0/standard/p``) so that different options never share a distribution.
    """
    for path, param in space.items():
        full_path, name = f"{path_prefix}{path}", f"{name_prefix}{path}"
        if isinstance(param, ChoiceParam):
            option_name = trial.suggest_categorical(name, list(param.options))
            option = param.options[option_name]
            set_path(raw, full_path, copy.deepcopy(option.value))
            suggest(trial, option.space, raw, f"{full_path}.", f"{name}/{option_name}/")
            continue
        set_path(raw, full_path, _suggest_one(trial, name, param))


def _suggest_one(trial: Any, name: str, param: Any) -> Any:
    if isinstance(param, FloatParam):
        return trial.suggest_float(name, param.low, param.high, log=param.log, step=param.step)
    if isinstance(param, IntParam):
        return trial.suggest_int(name, param.low, param.high, log=param.log, step=param.step)
    if isinstance(param, CategoricalParam):
        return trial.suggest_categorical(name, param.choices)
    raise TypeError(f"unknown parameter type {type(param).__name__}")


def grid(space: dict[str, Any]) -> dict[str, list[Any]]:
    """The grid sampler's search space (the spec loader has checked that the space is gridable)."""
    return {name: param.grid_points() for name, param in space.items()}
