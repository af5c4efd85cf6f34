from pathlib import Path
from typing import Literal

import pytest
import torch

from framework import registry
from framework.config import load_spec
from framework.strategies.base import DropoutStrategy
from framework.strategies.base import LossResult
from framework.strategies.base import StrategyConfig
from framework.strategies.stack import StrategyStack
from framework.training.loop import NonFiniteLoss
from framework.training.loop import train
from framework.training.run import load_dataset


def build(tiny_study: Path, *overrides: str):
    spec = load_spec(tiny_study, list(overrides)).spec
    dataset = load_dataset(spec)
    torch.manual_seed(0)
    return spec, dataset, registry.create_model(spec.model, dataset.info)


def test_training_learns_and_keeps_the_best_checkpoint(tiny_study: Path) -> None:
    spec, dataset, model = build(tiny_study, "train.max_steps=60", "train.eval_every=20",
                                 "train.lr=1e-2")
    result = train(model, dataset, spec.train, StrategyStack.from_configs(spec.dropout),
                   device=torch.device("cpu"), seed=0)
    losses = [h["val_loss"] for h in result.history]
    assert [h["step"] for h in result.history] == [20, 40, 60]
    assert losses[-1] < losses[0] < 4.2  # ln(65) = 4.17 is an untrained model
    assert result.final["val_loss"] == min(losses)
    assert result.history[0]["rate/attention"] == pytest.approx(0.1)
    assert result.final["train_tokens_per_sec"] > 0
    assert set(result.best_state) == set(model.state_dict())


class NaNConfig(StrategyConfig):
    name: Literal["nan_loss_test"] = "nan_loss_test"


class NaNLoss(DropoutStrategy):
    def compute_loss(self, model, batch) -> LossResult:
        return LossResult(model(batch).loss * float("nan"))


def test_a_non_finite_loss_stops_the_trial_with_a_reason(tiny_study: Path) -> None:
    registry.register_strategy("nan_loss_test", config=NaNConfig)(NaNLoss)
    try:
        spec, dataset, model = build(tiny_study)
        with pytest.raises(NonFiniteLoss, match="step 3"):
            train(model, dataset, spec.train, StrategyStack([NaNLoss(NaNConfig())]),
                  device=torch.device("cpu"), seed=0)
    finally:
        registry.strategies.remove("nan_loss_test")


def test_the_last_evaluation_is_reported_beside_the_best_checkpoint(tmp_path: Path) -> None:
    """Late dropout changes the run only after its cutoff, which may come after the best
    checkpoint: ``final_val_*`` (the last evaluation) is where that shows."""
    from tests.conftest import write_study

    study = write_study(tmp_path, """
        name: digits
        model: {name: mlp, hidden: [32]}
        data: {name: digits}
        train: {max_steps: 60, batch_size: 32, eval_every: 20, eval_batches: 2, lr: 0.05}
        """)
    spec, dataset, model = build(study)
    assert {"final_val_loss", "final_val_accuracy", "final_val_error"} <= spec.known_metrics()
    result = train(model, dataset, spec.train, StrategyStack.from_configs(spec.dropout),
                   device=torch.device("cpu"), seed=0)
    last = result.history[-1]
    for metric in ("val_loss", "val_accuracy", "val_error"):
        assert result.final[f"final_{metric}"] == last[metric]
    best = min(result.history, key=lambda h: h["val_loss"])
    assert result.final["val_accuracy"] == best["val_accuracy"]
