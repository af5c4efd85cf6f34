"""The report's figures, each drawn twice: plotly for the HTML page, matplotlib for a PNG.

Data come from where the trials put them: per-evaluation metrics (``val_loss``, ``rate/<kind>``)
from the MLflow metric histories of the trials' runs, and the search itself from Optuna. PNGs are
drawn with matplotlib's Agg backend (plotly's own PNG export needs kaleido, which the project does
not install), so the MLflow UI shows every figure without a browser plugin.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
import math
from pathlib import Path
from typing import Any
import warnings


@dataclass
class Figure:
    """One figure of the report: its plotly version, its PNG, or why it could not be drawn."""

    key: str
    title: str
    plotly: Any = None
    png: Path | None = None
    note: str = ""
    warn: bool = False
    """The note is a warning (the figure would mislead), printed by the report command too."""


@dataclass
class Series:
    """A metric of one configuration over steps, per seed (or per search trial)."""

    label: str
    by_seed: dict[int, dict[int, float]] = field(default_factory=dict)
    """``{seed: {step: value}}``."""

    def band(self) -> tuple[list[int], list[float], list[float], list[float]]:
        """Steps every seed reached, with the mean and the min/max over seeds at each."""
        steps = sorted(set.intersection(*(set(v) for v in self.by_seed.values())))
        means, lows, highs = [], [], []
        for step in steps:
            values = [v[step] for v in self.by_seed.values()]
            means.append(math.fsum(values) / len(values))
            lows.append(min(values))
            highs.append(max(values))
        return steps, means, lows, highs

    def constant(self) -> float | None:
        """The one value of every seed at every step, or None if it ever changes."""
        values = {v for by_step in self.by_seed.values() for v in by_step.values()}
        return values.pop() if len(values) == 1 else None


def metric_series(client: Any, runs: list[tuple[str, int, str]], metric: str) -> list[Series]:
    """One :class:`Series` per label from ``(label, seed, run_id)`` triples."""
    series: dict[str, Series] = {}
    for label, seed, run_id in runs:
        history = client.get_metric_history(run_id, metric)
        if history:
            entry = series.setdefault(label, Series(label))
            entry.by_seed[seed] = {m.step: m.value for m in history}
    return list(series.values())


LINE_STYLES = [("solid", "-"), ("dash", "--"), ("dot", ":"), ("dashdot", "-.")]
"""(Plotly dash, Matplotlib linestyle) pairs, one per round of the colour palette."""


def rate_metrics(client: Any, run_ids: list[str]) -> list[str]:
    """The ``rate/<kind>`` metrics any of the runs logged."""
    keys: set[str] = set()
    for run_id in run_ids:
        keys |= {k for k in client.get_run(run_id).data.metrics if k.startswith("rate/")}
    return sorted(keys)


def curves(key: str, title: str, y_label: str, series: list[Series], folder: Path) -> Figure:
    """Mean over seeds as a line, min-max over seeds as a band, one colour per configuration."""
    import plotly.graph_objects as go

    from framework.reporting.agg import pyplot

    figure = Figure(key, title)
    if not series:
        figure.note = "no metric history was logged for these runs"
        return figure
    fig = go.Figure()
    plt = pyplot()
    mfig, ax = plt.subplots(figsize=(7, 4))
    colours = _palette()
    for i, entry in enumerate(series):
        steps, means, lows, highs = entry.band()
        colour = colours[i % len(colours)]
        # Past the palette, the colours come round again in another line style.
        dash, linestyle = LINE_STYLES[i // len(colours) % len(LINE_STYLES)]
        n = len(entry.by_seed)
        name = f"{entry.label} (n={n})"
        if n > 1:
            fig.add_trace(go.Scatter(x=steps + steps[::-1], y=highs + lows[::-1], fill="toself",
                                     fillcolor=_rgba(colour, 0.2), line={"width": 0},
                                     hoverinfo="skip", showlegend=False, legendgroup=name))
            ax.fill_between(steps, lows, highs, color=colour, alpha=0.2, linewidth=0)
        fig.add_trace(go.Scatter(x=steps, y=means, mode="lines+markers", name=name,
                                 line={"color": colour, "dash": dash}, legendgroup=name))
        ax.plot(steps, means, marker="o", markersize=3, color=colour, linestyle=linestyle,
                label=name)
    fig.update_layout(title=title, xaxis_title="step", yaxis_title=y_label,
                      template="plotly_white", height=420, margin={"t": 50, "b": 40})
    ax.set(xlabel="step", ylabel=y_label, title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    figure.plotly = fig
    figure.png = _save(mfig, folder / f"{key}.png")
    return figure


def optuna_figures(study: Any, prefix: str, folder: Path, metrics: list[str]) -> list[Figure]:
    """Optuna's history, importances, parallel coordinates and (several objectives) Pareto front."""
    from optuna import visualization as vis
    from optuna.trial import TrialState
    from optuna.visualization import matplotlib as vis_mpl

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    multi = len(study.directions) > 1
    target: dict[str, Any] = {}
    if multi:
        target = {"target": lambda t: t.values[0], "target_name": metrics[0]}
    history = target or {"target_name": metrics[0]}
    kinds: list[tuple[str, str, Callable[..., Any], Callable[..., Any], dict[str, Any]]] = [
        ("history", "optimisation history", vis.plot_optimization_history,
         vis_mpl.plot_optimization_history, history),
        ("importances", "parameter importances", vis.plot_param_importances,
         vis_mpl.plot_param_importances, target),
        ("parallel", "parallel coordinates", vis.plot_parallel_coordinate,
         vis_mpl.plot_parallel_coordinate, target),
    ]
    if multi:
        kinds.append(("pareto", "Pareto front", vis.plot_pareto_front,
                      vis_mpl.plot_pareto_front, {"target_names": metrics}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optuna marks its matplotlib backend experimental
        return _draw_optuna(study, kinds, prefix, folder, complete)


def _draw_optuna(study: Any, kinds: list[Any], prefix: str, folder: Path, complete: list[Any]
                 ) -> list[Figure]:
    figures = []
    for key, title, interactive, static, kwargs in kinds:
        figure = Figure(f"{prefix}-{key}", f"{study.study_name}: {title}")
        figures.append(figure)
        if len(complete) < 2 or (key != "history" and not complete[0].params):
            figure.note = ("needs at least 2 complete trials with searched parameters "
                           f"({len(complete)} complete)")
            continue
        if key == "importances" and len(complete) < importance_min_trials():
            figure.warn = True
            figure.note = _too_few_for_importances(len(complete))
            continue
        try:
            figure.plotly = interactive(study, **kwargs)
            figure.plotly.update_layout(template="plotly_white", height=420)
            axes = static(study, **kwargs)
            first = axes.flat[0] if hasattr(axes, "flat") else axes
            figure.png = _save(first.figure, folder / f"{figure.key}.png")
        except Exception as exc:  # a figure the data cannot support is a note, not a failure
            figure.note = f"not drawn: {type(exc).__name__}: {exc}"
    return figures


IMPORTANCE_TOP_TRIALS = 5
"""Trials above PED-ANOVA's target quantile that Optuna's documentation asks for, at least."""


def _too_few_for_importances(complete: int) -> str:
    """What is missing for parameter importances, and how to get it."""
    needed = importance_min_trials()
    return (f"not drawn: needs at least {needed} complete trials, this search has {complete} "
            f"(Optuna's default importance evaluator, PED-ANOVA, compares the best "
            f"{importance_quantile():.0%} of the trials with the rest and needs "
            f"{IMPORTANCE_TOP_TRIALS} trials in that best part); raise search.n_trials to "
            f"{needed} or more and run the study again: it continues where it stopped")


def importance_quantile() -> float:
    """The fraction of best trials PED-ANOVA (Optuna's default importance evaluator) compares
    with the rest, by default."""
    import inspect

    from optuna.importance import PedAnovaImportanceEvaluator

    return inspect.signature(PedAnovaImportanceEvaluator).parameters["target_quantile"].default


def importance_min_trials() -> int:
    """Complete trials that put :data:`IMPORTANCE_TOP_TRIALS` in the top quantile of the
    evaluator ``optuna.importance.get_param_importances`` uses by default (PED-ANOVA)."""
    return math.ceil(IMPORTANCE_TOP_TRIALS / importance_quantile() - 1e-9)


def _save(fig: Any, path: Path) -> Path:
    from framework.reporting.agg import pyplot

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    pyplot().close(fig)
    return path


def _palette() -> list[str]:
    return ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
            "#17becf", "#7f7f7f", "#bcbd22"]


def _rgba(colour: str, alpha: float) -> str:
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"
