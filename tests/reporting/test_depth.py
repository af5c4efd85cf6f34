"""The study-level depth table and plot of LayerDrop studies, from trials' final metrics."""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.distributions import CategoricalDistribution
import pytest

from framework.reporting.depth import depth_table
from framework.reporting.depth import plot
from framework.reporting.depth import to_csv
from framework.reporting.depth import to_markdown


def trial(p: float, seed: int, losses: list[float], state=optuna.trial.TrialState.COMPLETE):
    return optuna.trial.create_trial(
        state=state, value=None if state != optuna.trial.TrialState.COMPLETE else losses[-1],
        params={"dropout.0.p": p, "seed": seed},
        distributions={"dropout.0.p": CategoricalDistribution([0.0, 0.5]),
                       "seed": CategoricalDistribution([0, 1])},
        user_attrs={**{f"val_loss_depth_{d + 1}": v for d, v in enumerate(losses)},
                    "val_loss_half_depth": losses[0]},
    )


def test_groups_by_parameter_and_averages_over_seeds(tmp_path: Path) -> None:
    trials = [trial(0.0, 0, [3.0, 2.0]), trial(0.0, 1, [3.4, 2.2]), trial(0.5, 0, [2.3, 2.1]),
              trial(0.5, 1, [9.0, 9.0], state=optuna.trial.TrialState.PRUNED)]
    table = depth_table(trials, "dropout.0.p")
    assert list(table) == [0.0, 0.5]
    assert table[0.0][1].mean == pytest.approx(3.2) and table[0.0][1].n == 2
    assert table[0.0][2].se == pytest.approx(0.1)
    assert table[0.5][1].mean == pytest.approx(2.3) and table[0.5][1].n == 1
    markdown = to_markdown(table, "dropout.0.p").splitlines()
    assert markdown[0] == "| layers kept | dropout.0.p=0.0 (n=2) | dropout.0.p=0.5 (n=1) |"
    assert markdown[2] == "| 2 | 2.1000 ± 0.1000 | 2.1000 |"
    assert markdown[3] == "| 1 | 3.2000 ± 0.2000 | 2.3000 |"
    assert "0.5,1,1,2.300000,0.000000" in to_csv(table, "dropout.0.p")
    plot(table, "dropout.0.p", tmp_path / "depth.png", "test")
    assert (tmp_path / "depth.png").stat().st_size > 1000
