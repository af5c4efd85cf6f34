"""``steps_to_val_loss``: the first evaluated step at a target val loss, from the history."""

from __future__ import annotations

from pathlib import Path

import pytest

from framework.config import load_spec
from framework.errors import SpecError
from framework.training.run import run_training
from framework.training.run import steps_to_val_loss
from tests.conftest import TINY_STUDY
from tests.conftest import write_study


HISTORY = [{"step": 100, "val_loss": 2.5}, {"step": 200, "val_loss": 2.1},
           {"step": 300, "val_loss": 1.95}, {"step": 400, "val_loss": 2.0}]


def test_the_first_evaluation_at_or_below_the_target_counts() -> None:
    assert steps_to_val_loss(HISTORY, 2.1, 400) == 200  # "at" counts
    assert steps_to_val_loss(HISTORY, 2.0, 400) == 300  # not the later one at the same loss
    assert steps_to_val_loss(HISTORY, 3.0, 400) == 100


def test_a_target_never_reached_reports_one_step_past_the_run() -> None:
    assert steps_to_val_loss(HISTORY, 1.9, 400) == 401
    assert steps_to_val_loss([], 1.9, 400) == 401


def test_a_trial_reports_it_from_its_own_evaluations(tmp_path: Path) -> None:
    study = write_study(tmp_path, TINY_STUDY.format(name="tiny"))
    spec = load_spec(study, ["train.target_val_loss=4.2", "train.measure_inference=false",
                             "search.objectives=[{metric: steps_to_val_loss}]"]).spec
    result = run_training(spec, tmp_path)
    losses = [(int(e["step"]), e["val_loss"]) for e in result.history]
    expected = next((step for step, loss in losses if loss <= 4.2), 7)
    assert result.final["steps_to_val_loss"] == expected
    assert [step for step, _ in losses] == [3, 6]


def test_the_metric_needs_a_target_and_confirm_metrics_must_be_known(tmp_path: Path) -> None:
    study = write_study(tmp_path, TINY_STUDY.format(name="tiny"))
    with pytest.raises(SpecError) as error:
        load_spec(study, ["search.objectives=[{metric: steps_to_val_loss}]"])
    assert error.value.key == "search.objectives[0].metric"
    assert "train.target_val_loss" in str(error.value)
    loaded = load_spec(study, ["train.target_val_loss=1.9",
                               "confirm.metrics=[{metric: steps_to_val_loss}]"])
    assert loaded.spec.confirm.metrics[0].metric == "steps_to_val_loss"
    with pytest.raises(SpecError) as error:
        load_spec(study, ["confirm.metrics=[{metric: test_error}]"])
    assert error.value.key == "confirm.metrics[0].metric"
    with pytest.raises(SpecError) as error:
        load_spec(study, ["confirm.metrics=[{metric: val_loss}]"])
    assert error.value.key == "confirm.metrics[0].metric" and "objective" in str(error.value)
    with pytest.raises(SpecError) as error:
        load_spec(study, ["train.target_val_loss=-1"])
    assert error.value.key == "train.target_val_loss"
