"""Group a study's complete trials (e.g. by strategy) and summarise metrics over seeds.

Each group's metric is summarised by :func:`framework.reporting.stats.summarize`: mean, sample
standard deviation, standard error (std / sqrt(n)) and the 95% confidence interval of the mean.
Metrics come from the trials' final metrics, which the objective stores as Optuna user attributes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from framework.reporting.stats import Summary
from framework.reporting.stats import summarize as summarize_values


@dataclass(frozen=True)
class Group:
    key: tuple[Any, ...]
    n: int
    stats: dict[str, Summary]


def default_grouping(space: dict[str, Any]) -> list[str]:
    """Every categorical or choice parameter of the space except the seed."""
    return [name for name, param in space.items()
            if param.type in ("categorical", "choice") and name != "seed"]


def summarize(trials: list[FrozenTrial], by: list[str], metrics: list[str]) -> list[Group]:
    """One :class:`Group` per distinct value of the ``by`` parameters, in order of appearance."""
    values: dict[tuple[Any, ...], dict[str, list[float]]] = {}
    for trial in trials:
        if trial.state != TrialState.COMPLETE:
            continue
        key = tuple(trial.params.get(name) for name in by)
        bucket = values.setdefault(key, {m: [] for m in metrics})
        for metric in metrics:
            if metric in trial.user_attrs:
                bucket[metric].append(float(trial.user_attrs[metric]))
    return [
        Group(key, max((len(v) for v in bucket.values()), default=0),
              {m: summarize_values(v) for m, v in bucket.items() if v})
        for key, bucket in values.items()
    ]


def to_markdown(groups: list[Group], by: list[str], metrics: list[str]) -> str:
    header = [*by, "n", *(f"{m} (mean ± s.e. [95% CI])" for m in metrics)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for group in groups:
        cells = [*(str(k) for k in group.key), str(group.n),
                 *(str(group.stats[m]) if m in group.stats else "–" for m in metrics)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
