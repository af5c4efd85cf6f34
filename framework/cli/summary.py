"""The table printed at the end of a run: best value and params, and where to look in MLflow."""

from __future__ import annotations

from typing import Any

from optuna.trial import TrialState
from rich.console import Console
from rich.table import Table

from framework.tracking.links import browse_hint
from framework.tracking.redact import redact


def print_summary(outcome: Any, spec: Any) -> None:
    study = outcome.study
    console = Console(highlight=False)
    complete = outcome.count(TrialState.COMPLETE)
    table = Table(title=f"study {spec.name}", show_header=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row("trials", f"{complete} complete, {outcome.count(TrialState.PRUNED)} pruned, "
                  f"{outcome.count(TrialState.FAIL)} failed (budget {spec.search.n_trials})")
    metrics = [o.metric for o in spec.search.objectives]
    if complete and len(metrics) == 1:
        best = study.best_trial
        table.add_row(f"best {metrics[0]}", f"{best.value:.4f} (trial {best.number})")
        table.add_row("best params", _params(best.params))
        table.add_row("best run", best.user_attrs.get("mlflow_run_id", "?"))
    elif complete:
        for trial in study.best_trials:
            values = ", ".join(f"{m}={v:.4f}" for m, v in zip(metrics, trial.values, strict=True))
            table.add_row(f"Pareto trial {trial.number}", f"{values}  {_params(trial.params)}")
    table.add_row("MLflow", f"experiment {spec.name!r} (id {outcome.experiment_id}), "
                  f"parent run {outcome.parent_run_id}")
    table.add_row("tracking", redact(outcome.locations.tracking_uri))
    table.add_row("storage", redact(outcome.locations.storage))
    table.add_row("browse", browse_hint(spec.name, outcome.experiment_id, outcome.locations))
    console.print(table)
    failed = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    for trial in failed[-5:]:
        console.print(f"trial {trial.number} failed: {trial.user_attrs.get('fail_reason', '?')}")


def _params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in params.items()) or "(none searched)"

