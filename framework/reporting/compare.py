"""Group a study's complete trials (e.g. by strategy) and summarise metrics over seeds.

Each group's metric is summarised by :func:`framework.reporting.stats.summarize`: mean, sample
standard deviation, standard error (std / sqrt(n)) and the 95% confidence interval of the mean.
With a baseline (one value of one grouping parameter), every other group is compared with the
baseline group that shares its other grouping values (:func:`framework.reporting.stats.compare`:
paired over the seeds both ran, Welch's test otherwise). Metrics come from the trials' final
metrics, which the objective stores as Optuna user attributes.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from typing import Any

from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from framework.errors import SpecError
from framework.reporting.stats import Difference
from framework.reporting.stats import Summary
from framework.reporting.stats import compare
from framework.reporting.stats import summarize as summarize_values


@dataclass(frozen=True)
class Group:
    key: tuple[Any, ...]
    n: int
    stats: dict[str, Summary]
    by_seed: dict[str, dict[int, float]] = field(default_factory=dict)
    """Each metric's values keyed by the trial's ``seed`` parameter (see :func:`_by_seed`)."""
    differences: dict[str, Difference] = field(default_factory=dict)
    """Each metric's difference to the baseline group; empty for the baseline itself."""
    is_baseline: bool = False


def default_grouping(space: dict[str, Any]) -> list[str]:
    """Every categorical or choice parameter of the space except the seed."""
    return [name for name, param in space.items()
            if param.type in ("categorical", "choice") and name != "seed"]


def summarize(trials: list[FrozenTrial], by: list[str], metrics: list[str]) -> list[Group]:
    """One :class:`Group` per distinct value of the ``by`` parameters, in order of appearance."""
    values: dict[tuple[Any, ...], dict[str, list[tuple[int, int, float]]]] = {}
    for trial in trials:
        if trial.state != TrialState.COMPLETE:
            continue
        key = tuple(trial.params.get(name) for name in by)
        bucket = values.setdefault(key, {m: [] for m in metrics})
        seed = seed_of(trial)
        for metric in metrics:
            if metric in trial.user_attrs:
                bucket[metric].append((seed, trial.number, float(trial.user_attrs[metric])))
    return [
        Group(key, max((len(v) for v in bucket.values()), default=0),
              {m: summarize_values([value for *_, value in v]) for m, v in bucket.items() if v},
              {m: _by_seed(v) for m, v in bucket.items()})
        for key, bucket in values.items()
    ]


def seed_of(trial: FrozenTrial) -> int:
    """The trial's ``seed`` parameter, or its number when the seed is not searched."""
    return int(trial.params.get("seed", trial.number))


def _by_seed(values: list[tuple[int, int, float]]) -> dict[int, float]:
    """Values keyed by seed; by trial number (which pairs with nothing) where a seed repeats,
    since a group that ran one seed twice cannot be paired seed for seed."""
    seeds = [seed for seed, _, _ in values]
    if len(set(seeds)) == len(seeds):
        return {seed: value for seed, _, value in values}
    return {-1 - number: value for _, number, value in values}


def parse_baseline(text: str, by: list[str]) -> tuple[str, str]:
    """``PARAM=VALUE`` of ``compare --baseline``, PARAM one of the grouping parameters.

    Raises:
        SpecError: naming ``--baseline``, when the text is not ``PARAM=VALUE`` or PARAM is not
            grouped by.
    """
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise SpecError(f"{text!r} is not PARAM=VALUE (e.g. dropout=none)", key="--baseline")
    if name.strip() not in by:
        raise SpecError(f"{name.strip()!r} is not grouped by (--by {' --by '.join(by)})",
                        key="--baseline")
    return name.strip(), value.strip()


def with_baseline(groups: list[Group], by: list[str], baseline: tuple[str, str]) -> list[Group]:
    """The groups with their differences to the baseline group of the same other values.

    A group's baseline has the same values of the other grouping parameters and the baseline
    value (compared as text, as the command line gives it) of the baseline's parameter.

    Raises:
        SpecError: naming ``--baseline``, when no group has the baseline value.
    """
    name, value = baseline
    index = by.index(name)
    bases = {g.key[:index] + g.key[index + 1:]: g for g in groups if str(g.key[index]) == value}
    if not bases:
        seen = sorted({str(g.key[index]) for g in groups})
        raise SpecError(f"no complete trial has {name}={value} (values: {', '.join(seen)})",
                        key="--baseline")
    out = []
    for group in groups:
        base = bases.get(group.key[:index] + group.key[index + 1:])
        if base is group:
            out.append(replace(group, is_baseline=True))
        elif base is None:
            out.append(group)
        else:
            out.append(replace(group, differences={
                metric: compare(seeds, base.by_seed[metric])
                for metric, seeds in group.by_seed.items() if seeds and base.by_seed.get(metric)
            }))
    return out


def difference_cell(group: Group, metric: str) -> str:
    """``Δ [95% CI] test, p`` against the baseline, ``(reference)`` for the baseline itself."""
    if group.is_baseline:
        return "(reference)"
    difference = group.differences.get(metric)
    if difference is None:
        return "–"
    if difference.test == "none":
        return f"{difference} (not testable: needs 2 seeds a side)"
    noise = ", within noise" if difference.within_noise else ""
    return f"{difference} {difference.test}, p = {difference.p_value:.3g}{noise}"


def header(by: list[str], metrics: list[str], baseline: tuple[str, str] | None = None
           ) -> list[str]:
    """The table's columns: the grouping values, n, and per metric its summary (and, with
    ``baseline``, its difference to the baseline)."""
    columns = [*by, "n"]
    for metric in metrics:
        columns.append(f"{metric} (mean ± s.e. [95% CI])")
        if baseline:
            columns.append(f"Δ {metric} vs {baseline[0]}={baseline[1]} [95% CI]")
    return columns


def row(group: Group, metrics: list[str], baseline: tuple[str, str] | None = None) -> list[str]:
    """One group's cells, in the order of :func:`header`."""
    cells = [*(str(k) for k in group.key), str(group.n)]
    for metric in metrics:
        cells.append(str(group.stats[metric]) if metric in group.stats else "–")
        if baseline:
            cells.append(difference_cell(group, metric))
    return cells


def to_markdown(groups: list[Group], by: list[str], metrics: list[str],
                baseline: tuple[str, str] | None = None, cpu: str = "") -> str:
    """The table; with ``baseline``, a column per metric with the difference to the baseline;
    with ``cpu``, the CPUs the trials ran on below it."""
    columns = header(by, metrics, baseline)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(row(group, metrics, baseline)) + " |" for group in groups]
    if baseline:
        lines.append("")
        lines.append(f"Δ = group minus the {baseline[0]}={baseline[1]} group with the same other "
                     "values; paired t-test over the seeds both ran (Welch's t-test otherwise); "
                     "'within noise' means the 95% CI of Δ contains 0.")
    if cpu:
        lines += ["", f"CPU: {cpu}"]
    return "\n".join(lines) + "\n"
