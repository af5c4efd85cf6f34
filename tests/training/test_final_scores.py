"""``final_test_*``: the test split scored on the weights at the end of training as well as on
the best checkpoint, so that a claim about the end of training (late dropout) has test data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from framework import registry
from framework.config import load_spec
from framework.training.evaluate import score_held_out
from framework.training.loop import TrainResult
from framework.training.run import load_dataset
from framework.training.run import run_training
from framework.training.run import score_final_weights
from tests.conftest import TINY_STUDY
from tests.conftest import write_study


@pytest.fixture
def spec(tmp_path: Path):
    return load_spec(write_study(tmp_path, TINY_STUDY.format(name="final"))).spec


def test_the_final_weights_are_scored_when_the_best_checkpoint_came_earlier(spec) -> None:
    dataset = load_dataset(spec)
    torch.manual_seed(0)
    model = registry.create_model(spec.model, dataset.info)
    device = torch.device("cpu")
    expected, expected_examples = score_held_out(model, dataset, spec.train, device, "test")

    earlier = TrainResult(history=[{"step": 3}, {"step": 6}], best_step=3)
    metrics, examples = score_final_weights(model, dataset, spec, device, ("test",), earlier)
    assert metrics == {f"final_{k}": v for k, v in expected.items()}
    assert set(examples) == {f"final_{k}" for k in expected_examples}
    np.testing.assert_array_equal(examples["final_test_loss"], expected_examples["test_loss"])

    last = TrainResult(history=[{"step": 3}, {"step": 6}], best_step=6)
    assert score_final_weights(model, dataset, spec, device, ("test",), last) is None
    assert score_final_weights(model, dataset, spec, device, (), earlier) is None


def test_a_scored_run_reports_final_test_metrics_beside_the_best_checkpoints(
        spec, tmp_path: Path) -> None:
    result = run_training(spec, tmp_path, score_test=True)
    assert {"test_loss", "final_test_loss"} <= set(result.final)
    assert result.examples["final_test_loss"].shape == result.examples["test_loss"].shape
    same = result.history[-1]["step"] == result.best_step
    # The same weights give the same scores; other weights, other scores.
    assert (result.final["final_test_loss"] == result.final["test_loss"]) == same


def test_a_search_trial_scores_no_test_split_at_all(spec, tmp_path: Path) -> None:
    result = run_training(spec, tmp_path)
    assert not [key for key in result.final if "test_" in key]
    assert not result.examples


def test_claims_may_name_final_test_metrics(tmp_path: Path) -> None:
    study = write_study(tmp_path, TINY_STUDY.format(name="claimed") + """
claims:
  - {id: end, text: "At the end of training.", candidate: top1, baseline: baseline,
     metric: final_test_loss, direction: lower}
""")
    assert load_spec(study).spec.claims[0].metric == "final_test_loss"
