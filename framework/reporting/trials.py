"""The report's per-trial table (before any confirmation) and its links into the MLflow UI."""

from __future__ import annotations

from dataclasses import dataclass
import html
from typing import Any

from framework.tracking.links import run_view


@dataclass(frozen=True)
class TrialRow:
    """One search trial: where it stands, what it scored, what it tried, where its run is."""

    study: str
    number: int
    state: str
    values: dict[str, float]
    params: dict[str, Any]
    run_url: str | None


def trial_rows(searches: list[tuple[str | None, Any]], metrics: list[str], base: str
               ) -> list[TrialRow]:
    """Every trial of every search study, in study order, then trial number."""
    rows = []
    for _, study in searches:
        for trial in study.get_trials(deepcopy=False):
            values = dict(zip(metrics, trial.values or [], strict=False))
            run_id = trial.user_attrs.get("mlflow_run_id")
            rows.append(TrialRow(study.study_name, trial.number, trial.state.name.lower(), values,
                                 dict(trial.params), run_view(base, run_id) if run_id else None))
    return rows


def run_links(runs: list[tuple[str, int, str]], base: str) -> dict[str, list[tuple[str, str]]]:
    """``{configuration: [(seed label, run address), ...]}`` from ``(label, seed, run_id)``."""
    links: dict[str, list[tuple[str, str]]] = {}
    for label, seed, run_id in sorted(runs, key=lambda r: (r[0], r[1])):
        links.setdefault(label, []).append((f"seed {seed}", run_view(base, run_id)))
    return links


def trials_html(rows: list[TrialRow], metrics: list[str]) -> str:
    """The table: study, trial, state, objective values, parameters, and a link to its run."""
    head = "".join(f"<th>{html.escape(c)}</th>"
                   for c in ["study", "trial", "state", *metrics, "parameters", "MLflow run"])
    body = []
    for row in rows:
        cells = [html.escape(row.study), str(row.number), html.escape(row.state)]
        cells += [f"{row.values[m]:.4f}" if m in row.values else "–" for m in metrics]
        cells.append(html.escape(format_params(row.params)))
        cells.append(f'<a href="{html.escape(row.run_url)}">run</a>' if row.run_url else "–")
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return (f'<table class="comparison trials"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def trials_text(rows: list[TrialRow], metrics: list[str]) -> str:
    """The same table as plain text lines, for the terminal."""
    lines = []
    for row in rows:
        values = "  ".join(f"{m}={row.values[m]:.4f}" for m in metrics if m in row.values)
        lines.append(f"{row.study} trial {row.number}: {row.state}  {values}  "
                     f"{format_params(row.params)}  {row.run_url or ''}".rstrip())
    return "\n".join(lines) + ("\n" if lines else "")


def links_html(links: list[tuple[str, str]]) -> str:
    """Inline links (``seed 1000``, ``seed 1001``...) for a comparison row."""
    return ", ".join(f'<a href="{html.escape(url)}">{html.escape(text)}</a>'
                     for text, url in links)


def format_params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in params.items()) or "(none searched)"
