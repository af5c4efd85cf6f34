"""The early/late and MC-dropout study files: every option validates, and each runs scaled down.

The full studies are measurements (run alone, at the settings the files state); here each is
shrunk to seconds with overrides, so that the files keep working as the code changes. The three
studies share one store (creating MLflow's store is most of the cost); loading SST-2 and the
store take tens of seconds on a loaded machine, hence ``slow``.
"""

from __future__ import annotations

from typing import Any

import optuna
import pytest

from framework.config import load_spec
from framework.tracking import Locations
from framework.tuning.study import run_study
from tests.conftest import ROOT


STUDIES = ROOT / "studies"
TINY_ENCODER = ["model.n_layer=1", "model.n_embd=16", "model.n_head=2", "model.block_size=24"]
TINY_TRAINING = ["train.max_steps=4", "train.eval_every=2", "train.batch_size=8",
                 "train.warmup_steps=1", "search.n_trials=1"]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Locations:
    return Locations.resolve(tmp_path_factory.mktemp("study-files") / "mlruns")


def grid_size(spec: Any) -> int:
    size = 1
    for param in spec.search.space.values():
        size *= len(getattr(param, "choices", None) or param.options)
    return size


def run_scaled(name: str, overrides: list[str], home: Locations) -> optuna.trial.FrozenTrial:
    path = STUDIES / f"{name}.yaml"
    spec = load_spec(path).spec  # every option of the space is validated here
    assert grid_size(spec) == spec.search.n_trials  # the budget covers the grid once
    run_study(load_spec(path, overrides), home)
    trials = optuna.load_study(study_name=spec.name, storage=home.storage).trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE]
    return trials[0]


@pytest.mark.slow
def test_early_late(home: Locations) -> None:
    from framework.tuning.confirm import arm_loaded

    loaded = load_spec(STUDIES / "early_late.yaml", [*TINY_ENCODER, *TINY_TRAINING])
    over_late = arm_loaded(loaded, "over_late")  # the over-fitting regime: its own data cut
    assert over_late.spec.data.train_examples == 3000
    assert arm_loaded(loaded, "under_early").spec.data.train_examples is None
    run_study(over_late, home)
    (trial,) = optuna.load_study(study_name="early_late.over_late", storage=home.storage).trials
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert 0.0 <= trial.values[0] <= 1.0  # val accuracy


@pytest.mark.slow
def test_mc_dropout_digits(home: Locations) -> None:
    trial = run_scaled("mc_dropout", ["model.hidden=[16]", "dropout.1.samples=3",
                                      *TINY_TRAINING], home)
    attrs = trial.user_attrs
    assert trial.values == [attrs["mc_val_nll"]]
    for kind in ("det", "mc"):
        assert 0.0 <= attrs[f"{kind}_val_ece"] <= 1.0
        assert f"{kind}_test_ece" not in attrs  # a search trial never sees the test split


@pytest.mark.slow
def test_mc_dropout_sst2(home: Locations) -> None:
    trial = run_scaled("mc_dropout_sst2", [*TINY_ENCODER, "data.train_examples=500",
                                           "data.val_size=50",  # of the 478 roots of 500 rows
                                           "dropout.1.samples=3", *TINY_TRAINING], home)
    assert trial.user_attrs["mc_val_accuracy"] >= 0.0
    assert "mc_test_ece" not in trial.user_attrs  # a search trial never sees the test split
