"""The study report: one self-contained HTML page, plus PNGs and the comparison as Markdown.

The page opens offline: plotly's JavaScript is inlined once in the page, plugin images are
embedded as base64, the style is inline, and nothing is fetched from the network. It shows the
comparison table of the confirmation (per arm when the study has arms), learning curves and
dropout rates over steps with a band over seeds, Optuna's view of each search, and the images
that strategies left in their trials' runs (e.g. LayerDrop's loss against depth).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
import datetime
import html
from pathlib import Path
from typing import Any

from framework.reporting.figures import Figure
from framework.reporting.trials import TrialRow


MAX_PLUGIN_IMAGES = 8
CURVE_TRIALS = 3
"""Without a confirmation, the learning curves show this many best search trials per study."""


@dataclass
class Report:
    study: str
    folder: Path
    html: Path
    comparison: Any | None
    figures: list[Figure] = field(default_factory=list)
    images: list[tuple[str, Path]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    trials: list[TrialRow] = field(default_factory=list)
    """Every search trial, shown when there is no confirmation yet."""
    run_links: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    """Links to the confirmation runs of each configuration of the comparison."""
    browse: str = ""
    """How to open the MLflow UI that the run links point into."""

    @property
    def pngs(self) -> list[Path]:
        return [f.png for f in self.figures if f.png is not None]


def build_report(loaded: Any, locations: Any, folder: Path, by: list[str] | None = None
                 ) -> Report:
    """Collect everything about the study ``loaded`` names and write ``folder/report.html``.

    Args:
        by: searched parameters whose values group the search's complete trials into the
            learning curves (one line per group, the band over its seeds), instead of the
            confirmation's configurations or the best search trials.
    """
    from mlflow import MlflowClient
    import optuna

    from framework.reporting.comparison import build
    from framework.reporting.figures import Series
    from framework.reporting.figures import curves
    from framework.reporting.figures import metric_series
    from framework.reporting.figures import optuna_figures
    from framework.reporting.figures import rate_metrics
    from framework.reporting.trials import run_links
    from framework.reporting.trials import trial_rows
    from framework.tracking.links import browse_hint
    from framework.tracking.links import ui_base
    from framework.tuning.confirm import confirm_name
    from framework.tuning.confirm import dropout_labels
    from framework.tuning.evidence import collect
    from framework.tuning.storage import make_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = loaded.spec
    storage = make_storage(locations.storage)
    client = MlflowClient(locations.tracking_uri)
    report = Report(spec.name, folder, folder / "report.html", None)
    metrics = [o.metric for o in spec.search.objectives]
    searches = _search_studies(spec, storage, report.notes)
    folder.mkdir(parents=True, exist_ok=True)
    base = ui_base(locations.tracking_uri)
    experiment = client.get_experiment_by_name(spec.name)
    report.browse = browse_hint(spec.name, experiment.experiment_id if experiment else "0",
                                locations)
    confirm = _load(confirm_name(spec.name), storage)
    runs: list[tuple[str, int, str]] = []
    if confirm is not None and confirm.get_trials(deepcopy=False, states=_complete()):
        report.comparison = replace(build(collect(confirm, spec.claims)),
                                    dropouts=dropout_labels(confirm))
        runs = [(t.params["config"], int(t.params["seed"]), t.user_attrs["mlflow_run_id"])
                for t in confirm.get_trials(deepcopy=False, states=_complete())
                if "mlflow_run_id" in t.user_attrs]
        report.run_links = run_links(runs, base)
    else:
        report.trials = trial_rows(searches, metrics, base)
        report.notes.append(f"no confirmation yet (run `dropout-lab confirm {loaded.source}`)"
                            + ("" if by else f"; curves show the {CURVE_TRIALS} best search "
                               "trials of each study"))
        report.notes += _search_labels(searches)
        if not by:
            for arm, study in searches:
                for trial in _ranked(study, spec)[:CURVE_TRIALS]:
                    label = f"{arm + ' ' if arm else ''}trial {trial.number}"
                    runs.append((label, 0, trial.user_attrs["mlflow_run_id"]))
    if by:
        report.notes.append(f"curves: every complete search trial, one line per "
                            f"{', '.join(by)}, the band over its seeds")
        runs = _grouped_runs(searches, by)

    figures_dir = folder / "figures"
    report.figures.append(curves(
        "learning-curves", "validation loss over steps (mean over seeds, band: min-max)",
        "val_loss", metric_series(client, runs, "val_loss"), figures_dir))
    for metric in dict.fromkeys(metrics):  # the objectives logged at every evaluation
        if metric != "val_loss" and (series := metric_series(client, runs, metric)):
            report.figures.append(curves(
                f"curves-{metric}", f"{metric} over steps (mean over seeds, band: min-max)",
                metric, series, figures_dir))
    # One figure per kind of site: many arms times several kinds in one plot are unreadable.
    rates: dict[str, list[Series]] = {}
    flat: dict[tuple[str, float], list[str]] = {}
    for key in rate_metrics(client, [run_id for _, _, run_id in runs]):
        kind = key.removeprefix("rate/")
        for entry in metric_series(client, runs, key):
            value = entry.constant()
            if value is None:
                rates.setdefault(kind, []).append(entry)
            else:  # a flat line says less than its value: name it instead of plotting it
                flat.setdefault((entry.label, value), []).append(kind)
    if flat:
        report.notes.append("dropout rates that never change (not plotted): " + "; ".join(
            f"{label}: {value:.4g} ({', '.join(kinds)})" for (label, value), kinds in flat.items()))
    for kind, series in rates.items():
        report.figures.append(curves(
            f"rates-{kind}", f"dropout rate of the {kind} sites over steps (mean over seeds, "
            "band: min-max)", "rate", series, figures_dir))
    for arm, study in searches:
        report.figures += optuna_figures(study, f"search-{arm or 'study'}", figures_dir, metrics)
    best_runs = _first_run_per_label(runs) + [
        (f"{arm + ' ' if arm else ''}best search trial {t.number}", t.user_attrs["mlflow_run_id"])
        for arm, study in searches for t in _ranked(study, spec)[:1]]
    report.images = _plugin_images(client, best_runs, folder / "images")
    report.html.write_text(render(report, spec))
    return report


def render(report: Report, spec: Any) -> str:
    """The page: inline style, plotly's JavaScript once, every figure and image embedded."""
    from plotly.offline import get_plotlyjs

    from framework.reporting.comparison import to_html
    from framework.reporting.trials import trials_html

    parts = [f"<h1>{html.escape(report.study)}</h1>",
             f"<p class=\"meta\">{html.escape(spec.description or '')} Generated "
             f"{datetime.datetime.now():%Y-%m-%d %H:%M} by dropout-lab report.</p>"]
    parts += [f'<p class="note">{html.escape(n)}</p>' for n in report.notes]
    parts.append("<h2>Comparison</h2>")
    if report.browse:
        parts.append(f'<p class="note">Links open the runs in the MLflow UI: '
                     f"<code>{html.escape(report.browse)}</code></p>")
    if report.comparison is not None:
        parts.append(to_html(report.comparison, report.run_links))
    else:
        parts.append('<p class="note">No confirmation trials: the table needs '
                     "<code>dropout-lab confirm</code>. The search's trials:</p>")
        parts.append(trials_html(report.trials, [o.metric for o in spec.search.objectives]))
    for figure in report.figures:
        parts.append(f"<h2>{html.escape(figure.title)}</h2>")
        if figure.plotly is None:
            text = f"warning: {figure.note}" if figure.warn else figure.note
            kind = "warning" if figure.warn else "note"
            parts.append(f'<p class="{kind}">{html.escape(text)}</p>')
            continue
        parts.append(figure.plotly.to_html(
            full_html=False, include_plotlyjs=False, div_id=figure.key,
            default_width="100%", default_height="420px", config={"responsive": True}))
    if report.images:
        parts.append("<h2>Figures from the strategies</h2>")
    for caption, path in report.images:
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        parts.append(f'<figure><img alt="{html.escape(caption)}" '
                     f'src="data:image/png;base64,{data}"><figcaption>{html.escape(caption)}'
                     "</figcaption></figure>")
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(report.study)}: dropout-lab report</title>"
            f"<style>{_STYLE}</style><script>{get_plotlyjs()}</script></head>"
            f"<body>{''.join(parts)}</body></html>")


_STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.6em; font-size: 1.15em; }
.meta, .note { color: #555; font-size: 0.9em; }
.warning { color: #8a4b00; font-size: 0.9em; }
table.comparison { border-collapse: collapse; font-size: 0.85em; }
table.comparison th, table.comparison td { border: 1px solid #ccc; padding: 4px 8px; }
table.comparison th { background: #f3f3f3; }
tr.baseline td { background: #f7f7ff; } tr.empty td { color: #888; font-style: italic; }
.js-plotly-plot, .plotly-graph-div { min-height: 420px; }
figure img { max-width: 100%; border: 1px solid #ddd; }
"""


def _complete() -> tuple[Any, ...]:
    from optuna.trial import TrialState

    return (TrialState.COMPLETE,)


def _load(name: str, storage: Any) -> Any | None:
    import optuna

    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return None


def _search_studies(spec: Any, storage: Any, notes: list[str]) -> list[tuple[str | None, Any]]:
    """The search studies (one per arm), noting arms that have not run or have no finished trial.

    Raises:
        LookupError: when not one of them exists in the storage.
    """
    names = [(arm, f"{spec.name}.{arm}") for arm in spec.arms] or [(None, spec.name)]
    found = []
    for arm, name in names:
        study = _load(name, storage)
        if study is None or not study.get_trials(deepcopy=False, states=_complete()):
            notes.append(f"{'arm ' + repr(arm) if arm else 'study ' + repr(name)}: "
                         "no finished trial (run the study first)")
        if study is not None:
            found.append((arm, study))
    if not found:
        raise LookupError(f"no study named {' or '.join(n for _, n in names)} in the storage")
    return found


def _search_labels(searches: list[tuple[str | None, Any]]) -> list[str]:
    """``search 'x' trained with ...`` for each search study that stored its settings (the
    confirmation's table carries these labels when there is one)."""
    from framework.tuning import fingerprint

    labels = []
    for _, study in searches:
        stored = fingerprint.stored_settings(study)
        if stored is not None:
            labels.append(f"search {study.study_name!r} trained with "
                          f"{fingerprint.label(stored)}")
    return labels


def _ranked(study: Any, spec: Any) -> list[Any]:
    sign = 1.0 if spec.search.objectives[0].direction == "minimize" else -1.0
    trials = [t for t in study.get_trials(deepcopy=False, states=_complete())
              if "mlflow_run_id" in t.user_attrs]
    return sorted(trials, key=lambda t: (sign * t.values[0], t.number))


def _grouped_runs(searches: list[tuple[str | None, Any]], by: list[str]
                  ) -> list[tuple[str, int, str]]:
    """``(label, seed, run_id)`` of every complete search trial, labelled by its ``by`` values
    (and arm) and keyed by :func:`~framework.reporting.compare.seed_of`. An arm that does not
    search one of ``by`` is labelled without it (its trials all have the arm's own value)."""
    from framework.reporting.compare import seed_of

    runs = []
    for arm, study in searches:
        for trial in study.get_trials(deepcopy=False, states=_complete()):
            if "mlflow_run_id" not in trial.user_attrs:
                continue
            label = ", ".join(f"{name}={trial.params.get(name)}" for name in by
                              if arm is None or name in trial.params)
            runs.append((f"{arm + ' ' if arm else ''}{label}".strip(),
                         seed_of(trial),
                         trial.user_attrs["mlflow_run_id"]))
    return runs


def _first_run_per_label(runs: list[tuple[str, int, str]]) -> list[tuple[str, str]]:
    first: dict[str, tuple[int, str]] = {}
    for label, seed, run_id in runs:
        if label not in first or seed < first[label][0]:
            first[label] = (seed, run_id)
    return [(f"{label} (seed {seed})", run_id) for label, (seed, run_id) in first.items()]


def _plugin_images(client: Any, runs: list[tuple[str, str]], folder: Path
                   ) -> list[tuple[str, Path]]:
    """PNG artifacts of the given runs, downloaded into ``folder``."""
    images: list[tuple[str, Path]] = []
    for caption, run_id in runs:
        for path in _artifact_pngs(client, run_id):
            if len(images) >= MAX_PLUGIN_IMAGES:
                return images
            target = folder / run_id
            target.mkdir(parents=True, exist_ok=True)
            local = Path(client.download_artifacts(run_id, path, str(target)))
            images.append((f"{caption}: {path}", local))
    return images


def _artifact_pngs(client: Any, run_id: str, path: str | None = None) -> list[str]:
    found = []
    for item in client.list_artifacts(run_id, path):
        if item.is_dir:
            found += _artifact_pngs(client, run_id, item.path)
        elif item.path.lower().endswith(".png"):
            found.append(item.path)
    return found
