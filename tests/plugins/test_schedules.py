"""The dropout-rate schedules: formulas, the val-loss rule, site targeting, SDPA, p = 0, a study."""

from __future__ import annotations

import math
from pathlib import Path

from mlflow import MlflowClient
import optuna
from pydantic import ValidationError
import pytest
import torch
import torch.nn.functional as F

from framework.config import load_spec
from framework.data.base import Batch
from framework.models.gpt import GPT
from framework.models.sites import find_sites
from framework.models.specs import GPTSpec
from framework.strategies.stack import StrategyStack
from framework.tuning.study import run_study
from plugins.cosine import Cosine
from plugins.cosine import CosineConfig
from plugins.curriculum import Curriculum
from plugins.curriculum import CurriculumConfig
from plugins.exp_decay import ExpDecay
from plugins.exp_decay import ExpDecayConfig
from plugins.linear_decay import LinearDecay
from plugins.linear_decay import LinearDecayConfig
from plugins.standard import StandardConfig
from plugins.step import Step
from plugins.step import StepConfig
from plugins.val_loss_adaptive import ValLossAdaptive
from plugins.val_loss_adaptive import ValLossAdaptiveConfig
from tests.conftest import write_study


def gpt() -> GPT:
    torch.manual_seed(0)
    return GPT(GPTSpec(n_layer=2, n_head=2, n_embd=16, block_size=8), {"vocab_size": 11})


def batch() -> Batch:
    x = torch.randint(0, 11, (3, 8), generator=torch.Generator().manual_seed(1))
    return Batch(x, torch.roll(x, -1, dims=1))


@pytest.mark.parametrize(("strategy", "step", "total", "expected"), [
    (LinearDecay(LinearDecayConfig(p_start=0.2, p_end=0.0)), 0, 1000, 0.2),
    (LinearDecay(LinearDecayConfig(p_start=0.2, p_end=0.0)), 250, 1001, 0.15),
    (LinearDecay(LinearDecayConfig(p_start=0.2, p_end=0.0)), 999, 1000, 0.0),  # the last step
    (LinearDecay(LinearDecayConfig(p_start=0.2, p_end=0.05, decay_steps=101)), 50, 1000, 0.125),
    (LinearDecay(LinearDecayConfig(p_start=0.2, p_end=0.05, decay_steps=100)), 99, 1000, 0.05),
    (LinearDecay(LinearDecayConfig(p_start=0.2, p_end=0.05, decay_steps=100)), 700, 1000, 0.05),
    (LinearDecay(LinearDecayConfig(p_start=0.0, p_end=0.4)), 500, 1001, 0.2),
    (ExpDecay(ExpDecayConfig(p_start=0.3, rate=0.01)), 100, 1000, 0.3 * math.exp(-1.0)),
    (ExpDecay(ExpDecayConfig(p_start=0.3, rate=0.01, p_end=0.2)), 100, 1000, 0.2),
    (ExpDecay(ExpDecayConfig(p_start=0.2)), 500, 2000, 0.2 * math.exp(-4.0 * 500 / 2000)),
    (Cosine(CosineConfig(p_start=0.2, p_end=0.0)), 0, 1000, 0.2),
    (Cosine(CosineConfig(p_start=0.2, p_end=0.0)), 500, 1001, 0.1),
    (Cosine(CosineConfig(p_start=0.2, p_end=0.0)), 250, 1001, 0.1 * (1 + math.cos(math.pi / 4))),
    (Cosine(CosineConfig(p_start=0.2, p_end=0.05)), 999, 1000, 0.05),  # the last step
    (Cosine(CosineConfig(p_start=0.3, p_end=0.1, decay_steps=10)), 20, 1000, 0.1),
    (Step(StepConfig(milestones=[10, 20], values=[0.3, 0.2, 0.0])), 9, 100, 0.3),
    (Step(StepConfig(milestones=[10, 20], values=[0.3, 0.2, 0.0])), 10, 100, 0.2),
    (Step(StepConfig(milestones=[10, 20], values=[0.3, 0.2, 0.0])), 25, 100, 0.0),
    (Curriculum(CurriculumConfig(p_final=0.5, gamma=0.01)), 0, 1000, 0.0),
    (Curriculum(CurriculumConfig(p_final=0.5, gamma=0.01)), 100, 1000,
     1 - ((1 - 0.5) * math.exp(-1.0) + 0.5)),
    (Curriculum(CurriculumConfig(p_final=0.2)), 200, 2000, 1 - (0.2 * math.exp(-1.0) + 0.8)),
])
def test_rate_follows_the_schedule_formula(strategy, step: int, total: int,
                                           expected: float) -> None:
    assert strategy.rate(step, total) == pytest.approx(expected, abs=1e-12)


def test_curriculum_rises_and_its_keep_probability_decays_to_theta_bar() -> None:
    curriculum = Curriculum(CurriculumConfig(p_final=0.2))  # gamma = 10 / T
    rates = [curriculum.rate(t, 1000) for t in range(0, 1000, 50)]
    assert rates == sorted(rates) and rates[0] == 0.0
    assert curriculum.keep_probability(0, 1000) == pytest.approx(1.0)
    assert curriculum.keep_probability(999, 1000) == pytest.approx(0.8, abs=1e-4)


def test_val_loss_adaptive_moves_down_on_improvement_and_up_otherwise() -> None:
    config = ValLossAdaptiveConfig(p_start=0.1, delta=0.05, p_min=0.0, p_max=0.2, min_delta=0.01)
    strategy = ValLossAdaptive(config)
    strategy.attach(gpt())
    rates = []
    # improves, improves, 2.895 is within min_delta of the best (2.9), worse, worse, worse
    # (capped at p_max), then improves four times (floored at p_min).
    for loss in [3.0, 2.9, 2.895, 3.1, 3.2, 3.3, 2.8, 2.7, 2.6, 2.5]:
        strategy.on_eval(0, {"val_loss": loss})
        rates.append(strategy.current)
    assert rates == pytest.approx([0.05, 0.0, 0.05, 0.1, 0.15, 0.2, 0.15, 0.1, 0.05, 0.0])
    assert rates[-1] == 0.0  # exactly 0, so the sites skip the op
    assert {site.p for site in strategy.sites} == {0.0}


def test_val_loss_adaptive_counts_small_gains_once_they_add_up_to_min_delta() -> None:
    config = ValLossAdaptiveConfig(p_start=0.2, delta=0.05, p_min=0.0, p_max=0.3, min_delta=0.01)
    strategy = ValLossAdaptive(config)
    strategy.attach(gpt())
    rates = []
    # Improving by 0.006 per evaluation: each gain is below min_delta, but every second one
    # brings the loss 0.012 below the last counted best, which counts as an improvement.
    for loss in [3.0, 2.994, 2.988, 2.982, 2.976, 2.970, 2.964]:
        strategy.on_eval(0, {"val_loss": loss})
        rates.append(strategy.current)
    assert rates == pytest.approx([0.15, 0.2, 0.15, 0.2, 0.15, 0.2, 0.15])
    assert strategy.best == pytest.approx(2.964)


def test_val_loss_adaptive_resumes_from_its_state() -> None:
    config = ValLossAdaptiveConfig(p_start=0.2, delta=0.02)
    first = ValLossAdaptive(config)
    for loss in [3.0, 2.5, 2.6]:
        first.on_eval(0, {"val_loss": loss})
    second = ValLossAdaptive(config)
    second.load_state_dict(first.state_dict())
    second.attach(gpt())
    assert second.current == pytest.approx(0.18)
    second.on_eval(0, {"val_loss": 2.55})  # not better than the restored best, 2.5
    assert second.current == pytest.approx(0.2)


@pytest.mark.parametrize("bad", [
    {"name": "val_loss_adaptive", "p_start": 0.5, "p_max": 0.3},
    {"name": "val_loss_adaptive", "delta": 0.0},
    {"name": "step", "milestones": [10, 20], "values": [0.1, 0.2]},
    {"name": "step", "milestones": [20, 10], "values": [0.1, 0.2, 0.3]},
    {"name": "linear_decay", "p_start": 1.0},
    {"name": "curriculum", "run_gamma": -1.0},
    {"name": "exp_decay", "sites": ["nowhere"]},
])
def test_bad_config_is_a_validation_error(bad: dict) -> None:
    schema = {"val_loss_adaptive": ValLossAdaptiveConfig, "step": StepConfig,
              "linear_decay": LinearDecayConfig, "curriculum": CurriculumConfig,
              "exp_decay": ExpDecayConfig}[bad["name"]]
    with pytest.raises(ValidationError):
        schema.model_validate(bad)


def test_a_targeted_kind_changes_while_the_others_keep_their_rate() -> None:
    model = gpt()
    stack = StrategyStack.from_configs([
        LinearDecayConfig(p_start=0.2, p_end=0.0, sites=["residual"]),
        StandardConfig(p=0.1, sites=["embedding", "attention"]),
    ])
    stack.attach(model)
    for step, expected in [(0, 0.2), (5, 0.1), (10, 0.0)]:
        stack.on_step(step, 11)
        assert [s.p for s in find_sites(model, ["residual"])] == pytest.approx([expected] * 4)
        assert {s.p for s in find_sites(model, ["embedding", "attention"])} == {0.1}
    assert stack.log_values() == {"rate/residual": 0.0, "rate/attention": 0.1,
                                  "rate/embedding": 0.1}


def test_sdpa_gets_the_scheduled_rate_and_zero_skips_dropout(
        monkeypatch: pytest.MonkeyPatch) -> None:
    sdpa_rates: list[float] = []
    dropout_calls: list[float] = []
    real_sdpa, real_dropout = F.scaled_dot_product_attention, F.dropout

    def sdpa_spy(*args, **kwargs):
        sdpa_rates.append(kwargs["dropout_p"])
        return real_sdpa(*args, **kwargs)

    def dropout_spy(x, p, *args, **kwargs):
        dropout_calls.append(p)
        return real_dropout(x, p, *args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", sdpa_spy)
    monkeypatch.setattr(F, "dropout", dropout_spy)
    model = gpt().train()
    strategy = Cosine(CosineConfig(p_start=0.2, p_end=0.0))
    strategy.attach(model)
    strategy.on_step(50, 101)
    model(batch())
    assert sdpa_rates == pytest.approx([0.1, 0.1])  # one per layer
    assert dropout_calls == pytest.approx([0.1] * 5)  # embedding + 2 residual sites per layer
    sdpa_rates.clear()
    dropout_calls.clear()
    strategy.on_step(100, 100)  # the schedule has reached 0
    model(batch())
    assert sdpa_rates == [0.0, 0.0]
    assert dropout_calls == []


def test_rates_below_off_below_are_applied_as_zero() -> None:
    model = gpt()
    strategy = ExpDecay(ExpDecayConfig(p_start=0.2, run_decay=4.0, off_below=0.01))
    strategy.attach(model)
    strategy.on_step(500, 1000)  # 0.2 * e^-2 = 0.027: kept
    assert [s.p for s in find_sites(model)] == pytest.approx([0.2 * math.exp(-2.0)] * 7)
    strategy.on_step(900, 1000)  # 0.2 * e^-3.6 = 0.0055: below 0.01, so exactly 0
    assert {s.p for s in find_sites(model)} == {0.0}
    assert strategy.rate(900, 1000) > 0.0  # the formula itself is untouched
    assert strategy.log_values()["rate/attention"] == 0.0


def test_a_study_of_schedules_runs_and_logs_rates_and_plots(tmp_path: Path, locations) -> None:
    study = write_study(tmp_path, """
        name: schedules
        seed: 0
        model: {name: gpt, n_layer: 1, n_head: 2, n_embd: 16, block_size: 16}
        data: {name: shakespeare_char}
        train: {max_steps: 6, batch_size: 4, eval_every: 3, eval_batches: 2, warmup_steps: 1}
        dropout:
          - {name: linear_decay, p_start: 0.3, sites: [residual]}
          - {name: val_loss_adaptive, p_start: 0.1, delta: 0.05, sites: [embedding, attention]}
        search: {n_trials: 1}
        """)
    run_study(load_spec(study), locations)

    trial = optuna.load_study(study_name="schedules", storage=locations.storage).best_trial
    client = MlflowClient(locations.tracking_uri)
    run_id = trial.user_attrs["mlflow_run_id"]
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    for name in ("linear_decay", "val_loss_adaptive"):
        assert f"rate_schedule_{name}.png" in artifacts
        path = Path(client.download_artifacts(run_id, f"rate_schedule_{name}.png", str(tmp_path)))
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    def logged(key: str) -> list[float]:
        return [m.value for m in sorted(client.get_metric_history(run_id, key),
                                        key=lambda m: m.step)]

    # Logged at the evaluations after steps 3 and 6: the rates of steps 2 and 5 (the last) of 6.
    assert logged("rate/residual") == pytest.approx([0.3 * (1 - 2 / 5), 0.0])
    adaptive = logged("rate/attention")
    assert adaptive == logged("rate/embedding")
    assert adaptive[0] == pytest.approx(0.1)  # no evaluation has moved it yet
    assert adaptive[1] == pytest.approx(0.05) or adaptive[1] == pytest.approx(0.15)
