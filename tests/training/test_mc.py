"""MC dropout at evaluation (Gal & Ghahramani 2016): averaging, calibration metrics, the plugin."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from framework import registry
from framework.config import load_spec
from framework.data.base import Batch
from framework.errors import SpecError
from framework.models.gpt import GPT
from framework.models.mlp import MLP
from framework.models.specs import GPTSpec
from framework.models.specs import MLPSpec
from framework.strategies.base import TrainedModel
from framework.strategies.stack import StrategyStack
from framework.training.evaluate import evaluate
from framework.training.mc import Predictive
from framework.training.mc import dropout_at_eval
from framework.training.mc import expected_calibration_error
from framework.training.mc import mc_evaluate
from framework.training.run import load_dataset
from plugins.mc_dropout import MCDropout
from plugins.mc_dropout import MCDropoutConfig
from plugins.standard import StandardConfig
from tests.conftest import write_study


def test_ece_of_a_known_sample() -> None:
    # 15 bins: 0.9 falls in (13/15, 14/15], 0.5 in (7/15, 8/15], 0.35 in (5/15, 6/15], 1.0 in the
    # last. Gaps |accuracy - confidence| per bin: 4 at 0.9 with 3 right: 0.15; 2 at 0.5 with 1
    # right: 0; 1 at 0.35, right: 0.65; 1 at 1.0, right: 0. ECE = (4 * 0.15 + 0.65) / 8.
    confidence = torch.tensor([0.9, 0.9, 0.9, 0.9, 0.5, 0.5, 0.35, 1.0])
    correct = torch.tensor([1, 1, 1, 0, 1, 0, 1, 1])
    assert expected_calibration_error(confidence, correct) == pytest.approx(0.15625)
    assert expected_calibration_error(confidence, correct, bins=1) == pytest.approx(
        abs(6 / 8 - 5.95 / 8), abs=1e-6)  # one bin: |accuracy - mean confidence|
    # The running sums give the same ECE from distributions over three classes, class 0 the
    # most likely; a wrong prediction's target is class 1.
    probs = torch.stack([confidence, (1 - confidence) / 2, (1 - confidence) / 2], 1)
    targets = torch.where(correct.bool(), 0, 1)
    running = Predictive(bins=15)
    for part in (slice(0, 3), slice(3, 8)):
        chosen = probs[part].gather(1, targets[part, None])[:, 0]
        running.add(probs[part], chosen.log(), targets[part])
    metrics = running.metrics()
    assert metrics["ece"] == pytest.approx(0.15625)
    assert metrics["accuracy"] == pytest.approx(6 / 8)
    assert metrics["nll"] == pytest.approx(-probs.gather(1, targets[:, None]).log().mean().item())
    entropy = -(probs * probs.clamp_min(1e-30).log()).sum(1).mean().item()
    assert metrics["entropy"] == pytest.approx(entropy)


def mlp_with_dropout(p: float = 0.5) -> MLP:
    torch.manual_seed(0)
    model = MLP(MLPSpec(hidden=[32, 32]), {"input_dim": 6, "num_classes": 4})
    StrategyStack.from_configs([StandardConfig(p=p, sites=["hidden"])]).attach(model)
    return model


def test_mc_averaging_equals_the_mean_of_separate_passes_with_the_same_seed() -> None:
    model = mlp_with_dropout().train()
    generator = torch.Generator().manual_seed(1)
    batches = [Batch(torch.randn(10, 6, generator=generator),
                     torch.randint(0, 4, (10,), generator=generator)) for _ in range(2)]
    torch.manual_seed(7)
    scores = mc_evaluate(model, batches, samples=5)
    assert model.training  # restored

    torch.manual_seed(7)
    averaged, pass_losses, det_logits = [], [], []
    for batch in batches:
        det_logits.append(model.eval()(batch).logits)
        with dropout_at_eval(model):
            passes = [model(batch).logits for _ in range(5)]
        averaged.append(torch.stack([F.softmax(p, -1) for p in passes]).mean(0))
        pass_losses += [F.cross_entropy(p, batch.targets).item() for p in passes]
    probs, targets = torch.cat(averaged), torch.cat([b.targets for b in batches])
    mc = scores["mc"]
    assert mc["nll"] == pytest.approx(-probs.gather(1, targets[:, None]).log().mean().item())
    assert mc["accuracy"] == pytest.approx((probs.argmax(1) == targets).float().mean().item())
    assert mc["loss"] == pytest.approx(sum(pass_losses) / len(pass_losses))
    assert mc["nll"] <= mc["loss"]  # Jensen: the averaged distribution scores at least as well
    assert mc["ece"] == pytest.approx(expected_calibration_error(
        probs.max(1).values, probs.argmax(1) == targets))
    det = torch.cat(det_logits)
    assert scores["det"]["nll"] == pytest.approx(F.cross_entropy(det, targets).item())
    assert scores["det"] != mc


def test_dropout_at_eval_samples_attention_and_restores_modes() -> None:
    torch.manual_seed(0)
    model = GPT(GPTSpec(n_layer=1, n_head=2, n_embd=16, block_size=8), {"vocab_size": 11})
    StrategyStack.from_configs([StandardConfig(p=0.3, sites=["attention"])]).attach(model)
    x = torch.randint(0, 11, (2, 8), generator=torch.Generator().manual_seed(1))
    model.train()
    with dropout_at_eval(model), torch.no_grad():
        assert not model.training and model.layers[0].attn.attn_drop.training
        first, second = model(Batch(x)).logits, model(Batch(x)).logits
    assert not torch.equal(first, second)  # SDPA's dropout_p follows the site's mode
    assert all(m.training for m in model.modules())
    model.eval()
    with dropout_at_eval(model):
        pass
    assert not any(m.training for m in model.modules())


def digits_spec(tmp_path: Path, *extra: str):
    study = write_study(tmp_path, """
        name: mc
        model: {name: mlp, hidden: [16]}
        data: {name: digits}
        train: {max_steps: 3, batch_size: 8, eval_every: 3, eval_batches: 1}
        dropout: [{name: standard, p: 0.5, sites: [hidden]}, {name: mc_dropout, samples: 3}]
        search: {objectives: [{metric: mc_val_ece, direction: minimize}]}
        """)
    return load_spec(study, list(extra)).spec


def test_the_plugin_scores_val_and_test_both_ways_on_the_same_targets(tmp_path: Path) -> None:
    spec = digits_spec(tmp_path)
    dataset = load_dataset(spec)
    model = mlp_with_dropout_for(spec, dataset)
    device = torch.device("cpu")
    trained = TrainedModel(
        model=model, evaluate=lambda m: {}, artifact_dir=tmp_path,
        eval_batches=lambda split: dataset.eval_batches(split, 8, 1), splits=("val", "test"))
    strategy = MCDropout(MCDropoutConfig(samples=3))
    rng = torch.get_rng_state()
    metrics = strategy.after_training(trained)
    assert torch.equal(torch.get_rng_state(), rng), "MC passes must not move the training's RNG"
    assert metrics == strategy.after_training(trained)  # its own seeded stream
    assert set(MCDropoutConfig.METRICS) <= set(metrics)
    assert {f"{k}_test_{m}" for k in ("mc", "det") for m in ("nll", "ece")} <= set(metrics)
    # The deterministic half agrees with the framework's own evaluation of the whole split.
    plain = evaluate(model, dataset, spec.train, device)
    assert metrics["det_val_nll"] == pytest.approx(plain["val_loss"], rel=1e-5)
    assert metrics["det_val_accuracy"] == pytest.approx(plain["val_accuracy"])
    assert 0.0 <= metrics["mc_val_ece"] <= 1.0
    assert metrics["mc_val_entropy"] > 0.0
    assert metrics["mc_val_nll"] != metrics["det_val_nll"]
    for split in ("val", "test"):  # the paired difference that `compare` averages over seeds
        for score in ("nll", "accuracy", "ece", "entropy"):
            assert metrics[f"mc_minus_det_{split}_{score}"] == pytest.approx(
                metrics[f"mc_{split}_{score}"] - metrics[f"det_{split}_{score}"])


def mlp_with_dropout_for(spec, dataset) -> MLP:
    torch.manual_seed(0)
    model = registry.create_model(spec.model, dataset.info)
    StrategyStack.from_configs(spec.dropout).attach(model, dataset.info)
    return model


def test_the_new_metrics_can_be_objectives_only_with_mc_dropout(tmp_path: Path) -> None:
    spec = digits_spec(tmp_path)
    assert {"mc_val_nll", "mc_val_ece", "mc_val_entropy", "mc_val_accuracy", "mc_val_loss",
            "det_val_ece"} <= spec.known_metrics()
    with pytest.raises(SpecError, match=r"search.objectives\[0\].metric.*'mc_val_ece'"):
        digits_spec(tmp_path, "dropout=[{name: standard, p: 0.5}]")


def test_mc_dropout_without_a_dropping_strategy_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"dropout\[0\]: 'mc_dropout' keeps dropout on at "
                                        "evaluation, and no other strategy"):
        digits_spec(tmp_path, "dropout=[{name: mc_dropout}]")
