"""Confirmation and arms: the parts of a study spec that compare configurations over seeds.

``confirm:`` says how many of the best configurations to re-train (``top``), with how many fresh
seeds (``seeds``), and which partial config is the baseline they are compared with.

``arms:`` splits a study into named arms, e.g. one per strategy, each with its own dropout list,
search space and trial budget. Each arm is the study's spec with the arm's sections applied
(mappings merged key by key, lists and ``search.space`` replaced) and runs as its own Optuna
study ``<name>.<arm>``; one arm may be marked ``baseline: true``. This module imports no torch.
"""

from __future__ import annotations

import copy
from typing import Annotated
from typing import Any

from pydantic import AfterValidator
from pydantic import Field
from pydantic import StringConstraints

from framework.config.base import Section
from framework.config.sections import Objective


ARM_NAME = r"^[A-Za-z0-9][A-Za-z0-9_\-]*$"


class ConfirmSpec(Section):
    """Re-train the best configurations with fresh seeds, and the baseline with the same seeds."""

    top: int = Field(3, ge=1)
    """How many of the best complete trials to confirm."""
    seeds: int = Field(5, ge=2)
    """Fresh seeds per configuration (at least 2 for a standard error)."""
    baseline: dict[str, Any] | None = None
    """A partial config applied to the study's spec, e.g. ``{dropout: [{name: none}]}``;
    default: the study's spec as written (before any search)."""
    metrics: list[Objective] = Field(default_factory=list)
    """Further final metrics for the table, each with its direction (e.g. ``test_error``,
    ``steps_to_val_loss``): summarised and tested against the baseline like the objectives,
    but never used to pick the configurations (so a test split stays out of the search)."""


class ArmSpec(Section):
    """One arm: the sections it changes; anything left out is the study's own."""

    baseline: bool = False
    """Compare every other arm's confirmed best with this arm's."""
    model: dict[str, Any] | None = None
    data: dict[str, Any] | None = None
    """E.g. ``{train_examples: 3000}``: a regime of the same data (merged key by key)."""
    train: dict[str, Any] | None = None
    dropout: list[Any] | None = None
    search: dict[str, Any] | None = None
    """E.g. ``{n_trials: 8, space: {...}}``; ``space`` replaces the study's space."""


def _one_baseline(arms: dict[str, ArmSpec]) -> dict[str, ArmSpec]:
    baselines = [name for name, arm in arms.items() if arm.baseline]
    if len(baselines) > 1:
        raise ValueError(f"only one arm may be the baseline, got {', '.join(baselines)}")
    return arms


Arms = Annotated[
    dict[Annotated[str, StringConstraints(pattern=ARM_NAME, max_length=100)], ArmSpec],
    AfterValidator(_one_baseline),
]
"""Named arms (letters, digits, ``_`` and ``-``), at most one of them the baseline."""


def apply_partial(raw: dict[str, Any], partial: dict[str, Any],
                  replace: tuple[str, ...] = ()) -> dict[str, Any]:
    """``raw`` with ``partial`` applied: mappings merged, other values (lists too) replaced.

    Args:
        replace: dotted paths whose mapping is replaced as a whole rather than merged.
    """
    out = copy.deepcopy(raw)
    _merge(out, partial, replace, "")
    return out


def _merge(node: dict[str, Any], partial: dict[str, Any], replace: tuple[str, ...],
           prefix: str) -> None:
    for key, value in partial.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and isinstance(node.get(key), dict) and path not in replace:
            _merge(node[key], value, replace, f"{path}.")
        else:
            node[key] = copy.deepcopy(value)


def arm_raw(raw: dict[str, Any], arm_name: str) -> dict[str, Any]:
    """The plain spec of one arm: the study's, renamed and with the arm's sections applied."""
    arm = dict(raw.get("arms", {})[arm_name] or {})
    arm.pop("baseline", None)
    out = apply_partial(raw, arm, replace=("search.space",))
    out.pop("arms", None)
    # Claims compare arms, so they belong to the whole study: one arm alone has none of them.
    out.pop("claims", None)
    out["name"] = f"{raw['name']}.{arm_name}"
    return out


def baseline_raw(raw: dict[str, Any], confirm: ConfirmSpec) -> dict[str, Any]:
    """The baseline's plain spec: the study's with ``confirm.baseline`` applied."""
    return apply_partial(raw, confirm.baseline or {})
