"""Early and late dropout (Liu et al. 2023), and schedules that drive another strategy's rate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError
import pytest
import torch

from framework import registry
from framework.config import load_spec
from framework.errors import SpecError
from framework.layers.layerdrop import LayerDropList
from framework.models.gpt import GPT
from framework.models.sites import find_branches
from framework.models.sites import find_sites
from framework.models.specs import GPTSpec
from framework.strategies.stack import StrategyStack
from framework.training.run import run_training
from plugins.early import Early
from plugins.early import EarlyConfig
from plugins.late import Late
from plugins.late import LateConfig
from tests.conftest import invoke
from tests.conftest import write_study


def gpt(n_layer: int = 2) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTSpec(n_layer=n_layer, n_head=2, n_embd=16, block_size=8), {"vocab_size": 11})


def configs(*entries: dict[str, Any]) -> list[Any]:
    registry.discover()
    return [registry.strategies.get(e["name"]).config.model_validate(e) for e in entries]


@pytest.mark.parametrize(("strategy", "step", "total", "expected"), [
    (Early(EarlyConfig(p=0.3, cutoff=100)), 99, 1000, 0.3),   # the last step before the cutoff
    (Early(EarlyConfig(p=0.3, cutoff=100)), 100, 1000, 0.0),  # the cutoff step itself
    (Late(LateConfig(p=0.3, cutoff=100)), 99, 1000, 0.0),
    (Late(LateConfig(p=0.3, cutoff=100)), 100, 1000, 0.3),
    (Early(EarlyConfig(p=0.2, cutoff=0.25)), 249, 1000, 0.2),  # cutoff 0.25 * 1000 = step 250
    (Early(EarlyConfig(p=0.2, cutoff=0.25)), 250, 1000, 0.0),
    (Late(LateConfig(p=0.2, cutoff=0.25)), 2, 10, 0.0),  # 2.5 rounds half up: step 3
    (Late(LateConfig(p=0.2, cutoff=0.25)), 3, 10, 0.2),
    (Late(LateConfig(p=0.2, cutoff=0.2)), 0, 1, 0.2),   # round(0.2) = 0: on from the start
])
def test_early_and_late_switch_at_the_cutoff(strategy, step: int, total: int,
                                             expected: float) -> None:
    assert strategy.rate(step, total) == expected


@pytest.mark.parametrize(("bad", "message"), [
    ({"cutoff": 0}, "at least 1"),
    ({"cutoff": 1.0}, "must be in \\(0, 1\\)"),
    ({"cutoff": True}, "not a boolean"),
    ({"p": 1.0}, "less than 1"),
    ({"drives": "stochastic_depth"}, "`<strategy>.<rate>`"),
    ({"drives": "stochastic_depth.p", "sites": ["residual"]}, "`sites` applies to"),
])
def test_bad_cutoff_and_drives_are_validation_errors(bad: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        LateConfig.model_validate(bad)


SCHEDULES = [
    {"name": "linear_decay", "p_start": 0.3, "p_end": 0.0},
    {"name": "exp_decay", "p_start": 0.3},
    {"name": "cosine", "p_start": 0.3, "p_end": 0.05},
    {"name": "step", "milestones": [3, 6], "values": [0.3, 0.2, 0.1]},
    {"name": "val_loss_adaptive", "p_start": 0.2, "delta": 0.05},
    {"name": "curriculum", "p_final": 0.3},
    {"name": "early", "p": 0.3, "cutoff": 5},
    {"name": "late", "p": 0.3, "cutoff": 5},
]


@pytest.mark.parametrize("schedule", SCHEDULES, ids=[s["name"] for s in SCHEDULES])
def test_every_schedule_drives_the_stochastic_depth_rate(schedule: dict) -> None:
    model = gpt()
    stack = StrategyStack.from_configs(configs(
        {"name": "stochastic_depth", "p": 0.05, "profile": "linear"},
        {**schedule, "drives": "stochastic_depth.p"}))
    depth, driver = stack.strategies
    stack.attach(model)
    for step in (0, 4, 9):
        stack.on_step(step, 10)
        expected = driver.rate(step, 10)
        assert depth.p == pytest.approx(expected)
        assert [b.p for b in find_branches(model)] == pytest.approx(
            [expected / 2, expected / 2, expected, expected])  # linear in depth, 2 layers
        assert stack.log_values()["rate/stochastic_depth.p"] == pytest.approx(expected)
    # It sets no site rate and claims no site.
    assert {(s.p, s.owner) for s in find_sites(model)} == {(0.0, None)}
    if schedule["name"] == "val_loss_adaptive":  # driven by evaluations, not steps
        stack.on_eval(10, {"val_loss": 3.0})
        assert depth.p == pytest.approx(0.15)


def test_a_schedule_drives_the_layerdrop_rate() -> None:
    model = gpt(n_layer=4)
    stack = StrategyStack.from_configs(configs(
        {"name": "layerdrop", "p": 0.0, "sweep": []},
        {"name": "linear_decay", "p_start": 0.4, "p_end": 0.0, "drives": "layerdrop.p"}))
    stack.attach(model)
    assert isinstance(model.layers, LayerDropList)
    stack.on_step(0, 5)
    assert model.layers.rates == pytest.approx([0.4] * 4)
    stack.on_step(4, 5)
    assert model.layers.rates == [0.0] * 4
    assert stack.log_values()["rate/layerdrop.p"] == 0.0


def test_a_driver_not_connected_to_its_target_refuses_to_run() -> None:
    late = Late(LateConfig(p=0.2, cutoff=2, drives="stochastic_depth.p"))
    with pytest.raises(RuntimeError, match="was not connected"):
        late.attach(gpt())


GPT_STUDY = """
    name: {name}
    seed: 0
    model: {{name: gpt, n_layer: 2, n_head: 2, n_embd: 16, block_size: 16}}
    data: {{name: shakespeare_char}}
    train: {{max_steps: 8, batch_size: 4, eval_every: 4, eval_batches: 2, warmup_steps: 1}}
    dropout: {dropout}
    search: {{n_trials: 1}}
    """


@pytest.mark.parametrize(("dropout", "key", "message"), [
    ("[{name: late, drives: stochastic_depth.p}]", "dropout[0].drives",
     "no other strategy of this trial is 'stochastic_depth'"),
    ("[{name: stochastic_depth}, {name: early, drives: stochastic_depth.q}]", "dropout[1].drives",
     "'stochastic_depth' has no rate 'q'"),
    ("[{name: standard}, {name: cosine, drives: standard.p}]", "dropout[1].drives",
     "'standard' has no rate 'p' a schedule may set (it has: none)"),
    ("[{name: stochastic_depth}, {name: early, drives: stochastic_depth.p}, "
     "{name: late, drives: stochastic_depth.p}]", "dropout[1].drives",
     "and dropout[2] both drive stochastic_depth.p"),
])
def test_an_unknown_or_shared_target_is_refused_naming_the_key(
        tmp_path: Path, dropout: str, key: str, message: str) -> None:
    study = write_study(tmp_path, GPT_STUDY.format(name="drives", dropout=dropout))
    with pytest.raises(SpecError) as error:
        load_spec(study)
    assert f"study.yaml: {key}:" in str(error.value) and message in str(error.value)
    result = invoke("validate", str(study))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert key in result.output


def test_in_one_trial_a_schedule_drives_sites_and_another_drives_stochastic_depth(
        tmp_path: Path) -> None:
    study = write_study(tmp_path, GPT_STUDY.format(name="drives", dropout="""
      - {name: stochastic_depth, p: 0.2}
      - {name: late, p: 0.3, cutoff: 4, drives: stochastic_depth.p}
      - {name: early, p: 0.2, cutoff: 0.5, sites: [residual]}
    """))
    result = run_training(load_spec(study).spec, tmp_path)
    # Evaluations after steps 4 and 8 log the rates of steps 3 and 7 (cutoffs at step 4).
    assert [h["rate/stochastic_depth.p"] for h in result.history] == [0.0, pytest.approx(0.3)]
    assert [h["rate/residual"] for h in result.history] == [pytest.approx(0.2), 0.0]
    for name in ("early", "late"):
        assert (tmp_path / f"rate_schedule_{name}.png").read_bytes()[:4] == b"\x89PNG"
