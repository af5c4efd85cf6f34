"""The search space: explicitly typed parameters over config paths.

Each key of ``search.space`` is a dotted path into the spec (``train.lr``, ``dropout.0.p``) and each
value names an Optuna distribution. ``type: choice`` replaces the subtree at its path with one of
several named options, each with its own sub-space that is suggested only when that option is
chosen (a conditional space, e.g. one option per strategy).
"""

from __future__ import annotations

from typing import Annotated
from typing import Any
from typing import Literal

from pydantic import Field
from pydantic import model_validator

from framework.config.base import Section


class FloatParam(Section):
    """A float from ``low`` to ``high`` (``trial.suggest_float``)."""

    type: Literal["float"]
    low: float
    high: float
    log: bool = False
    """Sample on a log scale (``low`` must then be > 0)."""
    step: float | None = Field(None, gt=0)
    """Discretisation step; not allowed together with ``log``."""

    @model_validator(mode="after")
    def _check(self) -> FloatParam:
        _check_range(self.low, self.high)
        if self.log and self.low <= 0:
            raise ValueError(f"log scale needs low > 0, got low={self.low}")
        if self.log and self.step is not None:
            raise ValueError("log and step cannot be used together")
        return self

    def candidates(self) -> list[Any]:
        return [self.low, self.high]

    def grid_points(self) -> list[Any] | None:
        """The values a grid takes: every ``step`` from ``low``; None without a step."""
        if self.step is None:
            return None
        count = int(round((self.high - self.low) / self.step)) + 1
        return [self.low + i * self.step for i in range(count)]


class IntParam(Section):
    """An integer from ``low`` to ``high`` inclusive (``trial.suggest_int``)."""

    type: Literal["int"]
    low: int
    high: int
    log: bool = False
    step: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _check(self) -> IntParam:
        _check_range(self.low, self.high)
        if self.log and (self.low <= 0 or self.step != 1):
            raise ValueError("log scale needs low > 0 and step 1")
        return self

    def candidates(self) -> list[Any]:
        return [self.low, self.high]

    def grid_points(self) -> list[Any]:
        return list(range(self.low, self.high + 1, self.step))


Scalar = bool | int | float | str | None


class CategoricalParam(Section):
    """One of a list of scalar values (``trial.suggest_categorical``)."""

    type: Literal["categorical"]
    choices: list[Scalar] = Field(min_length=1)

    def candidates(self) -> list[Any]:
        return list(self.choices)

    def grid_points(self) -> list[Any]:
        return list(self.choices)


class ChoiceOption(Section):
    """One option of a ``choice``: the subtree to put at the path, and its own sub-space."""

    value: Any
    space: dict[str, Param] = Field(default_factory=dict)
    """Paths relative to the choice's path, suggested only when this option is chosen."""


class ChoiceParam(Section):
    """A conditional choice between named options (e.g. strategies with their own ranges)."""

    type: Literal["choice"]
    options: dict[str, ChoiceOption] = Field(min_length=1)

    def grid_points(self) -> list[Any] | None:
        """The options' names, when no option has a sub-space (a grid has no conditions)."""
        if any(option.space for option in self.options.values()):
            return None
        return list(self.options)


Param = Annotated[
    FloatParam | IntParam | CategoricalParam | ChoiceParam, Field(discriminator="type")
]
ChoiceOption.model_rebuild()


def grid_size(space: dict[str, Any]) -> int | None:
    """How many points a grid over ``space`` has; None when a parameter has no grid (a float
    without ``step``, a ``choice`` whose options have sub-spaces)."""
    size = 1
    for param in space.values():
        points = param.grid_points()
        if points is None:
            return None
        size *= len(points)
    return size


def _check_range(low: float, high: float) -> None:
    if low > high:
        raise ValueError(f"low ({low}) must not be greater than high ({high})")
