"""The comparison table of a confirmation: each configuration over seeds, and against the baseline.

Rows come from a confirmation study (see :mod:`framework.tuning.confirm`): per configuration and
objective, mean, standard deviation, standard error and 95% CI over the seeds; against the baseline,
the difference with its CI, the test and a verdict. A study with arms gets one row per arm, its
best confirmed configuration; an arm without a finished trial gets a row that says so. The same
table is rendered as plain text (stdout), Markdown (papers, READMEs) and HTML (the report).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from dataclasses import field
import html
import math
from typing import Any

from framework.reporting.evidence import Evidence
from framework.reporting.stats import Difference
from framework.reporting.stats import Summary
from framework.reporting.stats import compare
from framework.reporting.stats import summarize


@dataclass(frozen=True)
class Row:
    label: str
    arm: str | None
    source_trial: int | None
    params: dict[str, Any]
    summaries: dict[str, Summary]
    differences: dict[str, Difference]
    is_baseline: bool = False
    note: str = ""
    """Why the row has no numbers (an arm without a finished trial)."""
    chosen: str = ""
    """How the configuration was chosen (its search's sampler, trials and keys)."""
    drops: str = ""
    """What its dropout acts on."""


@dataclass
class Comparison:
    study: str
    objectives: list[tuple[str, str]]
    """``(metric, direction)`` in the study's order."""
    seeds: list[int]
    rows: list[Row] = field(default_factory=list)
    baseline: str | None = None
    settings: list[tuple[str, str]] = field(default_factory=list)
    """``(study, label)``: the settings each search study and the confirmation trained with."""

    @property
    def metrics(self) -> list[str]:
        return [m for m, _ in self.objectives]


def build(evidence: Evidence, per_arm: bool | None = None) -> Comparison:
    """The comparison table of a confirmation's evidence (its complete runs)."""
    metrics = [m for m, _ in evidence.metrics]
    baseline = evidence.baseline
    base_values = evidence.values.get(baseline, {}) if baseline else {}
    configurations = evidence.configurations
    per_arm = any(c.arm for c in configurations) if per_arm is None else per_arm
    comparison = Comparison(evidence.study, list(evidence.metrics), list(evidence.seeds),
                            baseline=baseline, settings=list(evidence.settings))
    rows = []
    for configuration in configurations:
        got = evidence.values.get(configuration.label, {})
        summaries = {m: summarize(list(got[m].values())) for m in metrics if got.get(m)}
        differences = {}
        if configuration.label != baseline:
            for m in metrics:
                if got.get(m) and base_values.get(m):
                    differences[m] = compare(got[m], base_values[m])
        note = "" if summaries else "no complete confirmation trial yet"
        rows.append(Row(configuration.label, configuration.arm, configuration.source_trial,
                        configuration.params, summaries, differences,
                        configuration.label == baseline, note, configuration.chosen.describe(),
                        ", ".join(configuration.drops) or "nothing"))
    if per_arm:
        rows = _best_per_arm(rows, evidence.metrics, baseline)
        for arm in evidence.empty_arms:
            rows.append(Row(arm, arm, None, {}, {}, {}, note="no finished trial in this arm"))
    comparison.rows = rows
    return comparison


def machines(trials: list[Any]) -> str:
    """The CPUs the trials ran on (their ``cpu`` attribute), saying so when they differ: a time or
    speed column then compares trials on different machines. "" when none recorded one."""
    unknown = "not recorded"  # trials run before the attribute existed
    cpus = Counter(t.user_attrs.get("cpu", unknown) for t in trials)
    if set(cpus) <= {unknown}:
        return ""
    if len(cpus) == 1:
        return next(iter(cpus))
    return ("trials ran on different CPUs (times and speeds compare machines, not only "
            "configurations): " + "; ".join(f"{cpu}: {n} trials" for cpu, n in cpus.items()))


def _best_per_arm(rows: list[Row], objectives: list[tuple[str, str]],
                  baseline: str | None) -> list[Row]:
    """Each arm's best row by confirmed mean of the first objective, then the baseline's row
    (the baseline arm is represented by its baseline configuration)."""
    metric, direction = objectives[0]
    sign = 1.0 if direction == "minimize" else -1.0

    def score(row: Row) -> float:
        return sign * row.summaries[metric].mean if metric in row.summaries else math.inf

    base = next((r for r in rows if r.label == baseline), None)
    chosen: dict[str | None, Row] = {}
    for row in rows:
        if row is base or (base is not None and row.arm is not None and row.arm == base.arm):
            continue
        if row.arm not in chosen or score(row) < score(chosen[row.arm]):
            chosen[row.arm] = row
    return [*chosen.values(), *([base] if base else [])]


def _cells(comparison: Comparison, row: Row) -> list[str]:
    cells = [row.label + (" (baseline)" if row.is_baseline else ""),
             "–" if row.source_trial is None else str(row.source_trial),
             str(max((s.n for s in row.summaries.values()), default=0))]
    for metric in comparison.metrics:
        summary = row.summaries.get(metric)
        if summary is None:
            cells += [row.note or "–", "–", "–", "–"]
            continue
        cells += [f"{summary.mean:.4f} ± {summary.se:.4f}" if summary.n > 1
                  else f"{summary.mean:.4f}",
                  f"[{summary.ci_low:.4f}, {summary.ci_high:.4f}]" if summary.n > 1 else "–",
                  f"{summary.std:.4f}" if summary.n > 1 else "–"]
        difference = row.differences.get(metric)
        if row.is_baseline:
            cells.append("(reference)")
        elif difference is None:
            cells.append("–")
        else:  # no verdict word here: verdicts belong to the declared claims
            cells.append(f"{difference} {difference.test}, p = {difference.p_value:.3g}")
    return cells + [row.chosen or "–", row.drops or "–"]


def header(comparison: Comparison) -> list[str]:
    columns = ["configuration", "search trial", "seeds"]
    for metric in comparison.metrics:
        columns += [f"{metric} mean ± s.e.", "95% CI", "std",
                    f"Δ {metric} vs baseline [95% CI]"]
    return [*columns, "how chosen", "drops"]


def table_rows(comparison: Comparison) -> list[list[str]]:
    return [_cells(comparison, row) for row in comparison.rows]


def to_markdown(comparison: Comparison) -> str:
    columns = header(comparison)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cells) + " |" for cells in table_rows(comparison)]
    lines.append("")
    if comparison.settings:  # a list, then a blank line so the footnote is its own paragraph
        lines += [f"- {title}: {text}" for title, text in comparison.settings] + [""]
    lines.append(_footnote(comparison))
    return "\n".join(lines) + "\n"


def to_text(comparison: Comparison) -> str:
    """A fixed-width table for a terminal or a log file."""
    columns = header(comparison)
    rows = table_rows(comparison)
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c)
              for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
    out = [f"{comparison.study}: confirmation over seeds {comparison.seeds}"]
    out += [f"  {title}: {text}" for title, text in comparison.settings]
    out += [line, "-" * len(line)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    out.append(_footnote(comparison))
    return "\n".join(out) + "\n"


def to_html(comparison: Comparison, links: dict[str, list[tuple[str, str]]] | None = None
            ) -> str:
    """The table as HTML; ``links`` (``{row label: [(text, address)]}``) adds a column of
    links to each row's MLflow runs."""
    from framework.reporting.trials import links_html

    columns = header(comparison) + (["MLflow runs"] if links is not None else [])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for row, cells in zip(comparison.rows, table_rows(comparison), strict=True):
        cls = ' class="baseline"' if row.is_baseline else (' class="empty"' if row.note else "")
        extra = f"<td>{links_html(links.get(row.label, []))}</td>" if links is not None else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells)
                    + extra + "</tr>")
    settings = "".join(f"<li>{html.escape(title)}: {html.escape(text)}</li>"
                       for title, text in comparison.settings)
    return (f'<table class="comparison"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>"
            + (f'<ul class="note">{settings}</ul>' if settings else "")
            + f'<p class="note">{html.escape(_footnote(comparison))}</p>')


def _footnote(comparison: Comparison) -> str:
    return ("mean ± standard error over seeds; 95% CI from the t distribution; Δ = configuration "
            "minus baseline, paired t-test over shared seeds (Welch's t-test otherwise; an exact "
            "sign-flip test where the paired differences have no spread), not adjusted for "
            "multiple comparisons: the verdicts are those of the declared claims.")
