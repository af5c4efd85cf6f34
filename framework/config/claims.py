"""Claims: what a study sets out to show, declared before it runs, judged by the tool.

A claim names two things the confirmation trains (an arm, or a configuration label such as
``top1``, ``baseline`` or ``<arm>/top1``), a metric scored after training on data nothing chose
on (the ``test`` split, or a cost such as ``train_time``), and the side the candidate should be
on. With a ``margin`` it is a non-inferiority claim ("no worse than the baseline by more than
``margin``", e.g. structured dropout's "same quality"), judged against that margin, which is
fixed before the run. ``dropout-lab confirm`` prints one verdict per claim; this module only
describes them (no torch, no statistics).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field
from pydantic import model_validator

from framework.config.base import Section


CLAIM_ID = r"^[A-Za-z0-9][A-Za-z0-9_\-]*$"
CONFIGURATION = re.compile(r"^(?:(?P<arm>[A-Za-z0-9][A-Za-z0-9_\-]*)/)?top(?P<rank>[1-9][0-9]*)$")
"""A confirmed configuration's label: ``top<K>`` or ``<arm>/top<K>``."""


class Claim(Section):
    """One claim: candidate against baseline on one metric, in one direction."""

    id: str = Field(pattern=CLAIM_ID, max_length=100)
    """Short name, used in the verdict lines (``half_depth``, ``quality``)."""
    text: str = Field(min_length=1)
    """The claim in one sentence, as the paper makes it."""
    candidate: str
    """An arm (its best confirmed configuration) or a configuration label (``top1``,
    ``<arm>/top2``)."""
    baseline: str = "baseline"
    """The same kinds of name; ``baseline`` is the confirmation's baseline configuration."""
    metric: str
    """A metric the confirmation reports on the test split (``test_error``) or a cost
    (``train_time``); never a ``val_*`` metric, which the search chose on."""
    direction: Literal["lower", "higher"]
    """The side of the baseline the candidate's metric should be on."""
    margin: float | None = Field(None, gt=0)
    """For "no worse than": the largest difference in the wrong direction that still counts as
    no worse (in the metric's units), fixed before the run."""

    @model_validator(mode="after")
    def _distinct(self) -> Claim:
        if self.candidate == self.baseline:
            raise ValueError(f"claim {self.id!r} compares {self.candidate!r} with itself")
        return self


def claim_target_problem(name: str, arms: list[str], top: int, has_baseline: bool) -> str | None:
    """Why ``name`` names nothing the confirmation trains, or None when it does.

    Args:
        arms: the study's arms (empty without arms).
        top: how many of each search's best configurations the confirmation trains.
        has_baseline: whether the confirmation trains a ``baseline`` configuration (studies
            without arms; with arms, the baseline arm is one of the arms).
    """
    if name in arms:
        return None
    if name == "baseline":
        return None if has_baseline else (
            "a study with arms has no 'baseline' configuration; name the baseline arm")
    match = CONFIGURATION.match(name)
    if match is None:
        known = ", ".join(arms) if arms else "top1, ..., baseline"
        return f"{name!r} is neither an arm nor a configuration label (known: {known})"
    arm, rank = match["arm"], int(match["rank"])
    if arm is None and arms:
        return f"{name!r} needs an arm in a study with arms (e.g. {arms[0]}/{name})"
    if arm is not None and arm not in arms:
        return f"{name!r} names no arm of this study (arms: {', '.join(arms) or 'none'})"
    if rank > top:
        return f"{name!r} is not confirmed: confirm.top is {top}"
    return None
