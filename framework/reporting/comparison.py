"""The comparison table of a confirmation: each configuration over seeds, and against the baseline.

Rows come from a confirmation study (see :mod:`framework.tuning.confirm`): per configuration and
objective, mean, standard deviation, standard error and 95% CI over the seeds; against the baseline,
the difference with its CI, the test and a verdict. A study with arms gets one row per arm, its
best confirmed configuration; an arm without a finished trial gets a row that says so. The same
table is rendered as Markdown (papers, READMEs) and HTML (the report), and for a terminal as plain
text about 100 columns wide: what the baseline and each configuration are, then one short block
per metric.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from dataclasses import field
import html
import math
import textwrap
from typing import Any

from framework.reporting.evidence import Evidence
from framework.reporting.stats import Difference
from framework.reporting.stats import Summary
from framework.reporting.stats import compare
from framework.reporting.stats import summarize


TEXT_WIDTH = 100
"""Columns the terminal table's prose lines wrap at."""

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
    dropouts: dict[str, str] = field(default_factory=dict)
    """Each configuration's dropout as its spec writes it (``standard (p=0.1)``), by label;
    empty when only the evidence is at hand (it does not record the specs)."""

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
    """The table for a terminal or a log file, about 100 columns wide: what each configuration
    is (the baseline named first), then one block per metric (mean ± s.e., Δ to the baseline and
    its test). The 95% CI and std of each mean are in the Markdown and HTML tables."""
    out = [f"{comparison.study}: confirmation over seeds {comparison.seeds}"]
    out += [_wrap(f"  {title}: {text}", "      ") for title, text in comparison.settings]
    out += ["", _wrap(_baseline_line(comparison), "    "), "configurations:"]
    out += [_wrap("  " + _configuration_line(comparison, row), "      ")
            for row in comparison.rows]
    for metric, direction in comparison.objectives:
        better = "lower" if direction == "minimize" else "higher"
        out += ["", f"{metric} ({better} is better)",
                *_aligned([["configuration", "mean ± s.e.",
                            "Δ vs baseline [95% CI]", "test"],
                           *(_metric_cells(row, metric) for row in comparison.rows)])]
    out += ["", _wrap(_footnote(comparison))]
    return "\n".join(out) + "\n"


def _baseline_line(comparison: Comparison) -> str:
    """What every Δ is measured against, in words."""
    base = next((row for row in comparison.rows if row.is_baseline), None)
    if base is None:
        return "baseline: none (no Δ: the study names no baseline, or its arm has no run)"
    origin = f"the best of arm {base.arm!r}" if base.arm else "confirm.baseline of the study"
    return f"baseline: {base.label} — {origin}: {_dropout(comparison, base)}"


def _configuration_line(comparison: Comparison, row: Row) -> str:
    """One configuration: its dropout, its seeds and where it came from."""
    if row.note:
        return f"{row.label}: {row.note}"
    seeds = max((s.n for s in row.summaries.values()), default=0)
    origin = ("as written" if row.source_trial is None
              else f"search trial {row.source_trial}, {row.chosen or 'searched'}")
    return f"{row.label}: {_dropout(comparison, row)}; {seeds} seeds; {origin}"


def _dropout(comparison: Comparison, row: Row) -> str:
    """The row's dropout as its spec writes it (when known) and what it drops."""
    drops = f"drops {row.drops or 'nothing'}"
    written = comparison.dropouts.get(row.label)
    return f"dropout {written}, {drops}" if written else drops


def _metric_cells(row: Row, metric: str) -> list[str]:
    summary = row.summaries.get(metric)
    if summary is None:  # why is said in the configuration's line
        return [row.label, "–", "", ""]
    mean = (f"{summary.mean:.4f} ± {summary.se:.4f}" if summary.n > 1
            else f"{summary.mean:.4f} (1 seed)")
    if row.is_baseline:
        return [row.label, mean, "(the baseline)", ""]
    difference = row.differences.get(metric)
    if difference is None:
        return [row.label, mean, "–", ""]
    return [row.label, mean, str(difference),
            f"{difference.test}, p = {difference.p_value:.3g}"]


def _aligned(rows: list[list[str]]) -> list[str]:
    """Rows of cells as left-aligned columns two spaces apart, the first row underlined."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    return [lines[0], "-" * max(map(len, lines)), *lines[1:]]


def _wrap(text: str, indent: str = "") -> str:
    return textwrap.fill(text, TEXT_WIDTH, subsequent_indent=indent, break_on_hyphens=False)


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
    return (f'<p class="note">{html.escape(_baseline_line(comparison))}</p>'
            f'<table class="comparison"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>"
            + (f'<ul class="note">{settings}</ul>' if settings else "")
            + f'<p class="note">{html.escape(_footnote(comparison))}</p>')


def _footnote(comparison: Comparison) -> str:
    return ("mean ± standard error over seeds; 95% CI from the t distribution; Δ = configuration "
            "minus baseline, paired t-test over shared seeds (Welch's t-test otherwise; an exact "
            "sign-flip test where the paired differences have no spread), not adjusted for "
            "multiple comparisons: the verdicts are those of the declared claims.")
