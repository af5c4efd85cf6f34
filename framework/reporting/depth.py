"""Val loss against kept depth, per group of trials (e.g. per LayerDrop rate), over seeds.

The ``layerdrop`` strategy stores the val loss of each trial's best model pruned to every depth
as final metrics ``val_loss_depth_<k>`` (Optuna user attributes). This module groups complete
trials by a parameter (``dropout.0.p``), averages over the other parameters (seeds), and draws
one line per group: the comparison of Fan, Grave and Joulin (ICLR 2020, fig. 1 and sec. 6), where
models trained without LayerDrop degrade far more when pruned.
"""

from __future__ import annotations

from pathlib import Path
import re
from typing import Any

from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from framework.reporting.stats import Summary
from framework.reporting.stats import summarize


DEPTH_METRIC = re.compile(r"^val_loss_depth_(\d+)$")

DepthTable = dict[Any, dict[int, Summary]]
"""Group value -> depth -> val loss over the group's trials."""


def depth_table(trials: list[FrozenTrial], by: str) -> DepthTable:
    """Mean (and standard error) of ``val_loss_depth_<k>`` per value of parameter ``by``."""
    values: dict[Any, dict[int, list[float]]] = {}
    for trial in trials:
        if trial.state != TrialState.COMPLETE:
            continue
        group = values.setdefault(trial.params.get(by), {})
        for key, value in trial.user_attrs.items():
            match = DEPTH_METRIC.match(key)
            if match:
                group.setdefault(int(match[1]), []).append(float(value))
    return {key: {d: summarize(v) for d, v in sorted(depths.items())}
            for key, depths in sorted(values.items(), key=lambda kv: str(kv[0])) if depths}


def to_markdown(table: DepthTable, by: str) -> str:
    """Rows: depths (deepest first); columns: groups; cells: mean ± s.e. (n in the header)."""
    keys = list(table)
    depths = sorted({d for column in table.values() for d in column}, reverse=True)
    header = ["layers kept", *(f"{by}={k} (n={max(s.n for s in table[k].values())})"
                               for k in keys)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for depth in depths:
        cells = [_cell(table[k][depth]) if depth in table[k] else "–" for k in keys]
        lines.append(f"| {depth} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _se(stat: Summary) -> float:
    """The standard error, 0 for a single trial (a point with no error bar)."""
    return stat.se if stat.n > 1 else 0.0


def _cell(stat: Summary) -> str:
    return f"{stat.mean:.4f} ± {stat.se:.4f}" if stat.n > 1 else f"{stat.mean:.4f}"


def to_csv(table: DepthTable, by: str) -> str:
    lines = [f"{by},depth,n,val_loss_mean,val_loss_se"]
    for key, column in table.items():
        for depth, stat in column.items():
            lines.append(f"{key},{depth},{stat.n},{stat.mean:.6f},{_se(stat):.6f}")
    return "\n".join(lines) + "\n"


def plot(table: DepthTable, by: str, path: Path, title: str) -> None:
    """Val loss against layers kept, one line (mean ± s.e. over trials) per group."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for key, column in table.items():
        depths = list(column)
        ax.errorbar(depths, [column[d].mean for d in depths], yerr=[_se(column[d]) for d in depths],
                    marker="o", capsize=3, label=f"{by}={key}")
    ax.set_xlabel("layers kept at inference")
    ax.set_ylabel("val loss")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
