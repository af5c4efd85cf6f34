"""How long a trial trains: a length too long to be meant, and evaluations that never come.

``run`` refuses a ``train.max_steps`` beyond :data:`MAX_STEPS` unless given ``--yes``; loading a
study warns when ``train.eval_every`` exceeds ``train.max_steps`` (the loop then evaluates once,
after the last step). Both look at every training the study runs: each arm's in a study with arms,
and each end of a searched ``train.max_steps``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from framework.config.arms import arm_raw
from framework.config.sections import SearchSpec
from framework.config.sections import TrainSpec
from framework.config.space import ChoiceParam
from framework.errors import SpecError


MAX_STEPS = 10_000_000
"""The most optimizer steps per trial that ``run`` takes without ``--yes``. nanoGPT's GPT-2 (124M)
reproduction takes 600,000 steps; a trial over 16 times that long is far more often zeros typed
once too often than a plan, and it would train until killed with no estimate shown."""


@dataclass(frozen=True)
class Training:
    """The training settings of the study, or of one of its arms."""

    prefix: str
    """``arms.NAME.`` for an arm's, else empty."""
    train: TrainSpec
    searched: bool
    """Whether ``train.max_steps`` is in the search space."""
    steps: list[int]
    """Every length a trial may train: ``max_steps``, or each end of its searched range."""


def check_training_length(spec: Any, raw: dict[str, Any]) -> None:
    """Refuse a trial longer than :data:`MAX_STEPS` steps.

    Raises:
        SpecError: naming ``train.max_steps`` (the searched one, or the arm that sets it).
    """
    for training in trainings(spec, raw):
        longest = max(training.steps)
        if longest > MAX_STEPS:
            key = ("search.space['train.max_steps']" if training.searched
                   else "train.max_steps")
            raise SpecError(
                f"{longest:,} steps is more than {MAX_STEPS:,} per trial (a typo more often "
                "than a plan); lower it, or pass --yes to `dropout-lab run` to train that long",
                key=f"{training.prefix}{key}")


def evaluation_warnings(spec: Any, raw: dict[str, Any]) -> list[str]:
    """A line for each training whose ``eval_every`` exceeds its ``max_steps``: it is evaluated
    only after its last step, so no pruner sees it and no checkpoint is saved before the end."""
    lines = []
    for training in trainings(spec, raw):
        shortest = min(training.steps)
        if training.train.eval_every > shortest:
            lines.append(
                f"{training.prefix}train.eval_every: {training.train.eval_every} is more than "
                f"train.max_steps ({shortest}): trials are evaluated only after their last step "
                f"(nothing to prune on, no checkpoint before the end); set it to at most "
                f"{shortest}")
    return lines


def trainings(spec: Any, raw: dict[str, Any]) -> list[Training]:
    """The study's training, or in a study with arms each arm's (the study's own never runs)."""
    if not spec.arms:
        return [_training(spec.train, spec.search.space, prefix="")]
    found = []
    for name in spec.arms:
        arm = arm_raw(raw, name)
        search = SearchSpec.model_validate(arm.get("search") or {})
        found.append(_training(TrainSpec.model_validate(arm.get("train") or {}), search.space,
                               prefix=f"arms.{name}."))
    return found


def _training(train: TrainSpec, space: dict[str, Any], prefix: str) -> Training:
    searched = space.get("train.max_steps")
    if searched is None or isinstance(searched, ChoiceParam):
        return Training(prefix, train, searched=False, steps=[train.max_steps])
    return Training(prefix, train, searched=True,
                    steps=[int(value) for value in searched.candidates()])
