"""Studies whose strategy cannot act on the model are refused by ``validate``: exit 2, the reason.

Each case is one the framework used to accept and then train as a silent no-op, or crash in
mid-trial with; the registry-wide check of every pair is ``tests/plugins/test_contract.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner
import yaml

from framework.cli.app import app
from framework.contract import ModelCapabilities
from framework.contract import StrategyNeeds
from framework.contract import check_stack
from tests.cli.test_cli import cli


GPT = {"name": "gpt", "n_layer": 2, "n_head": 2, "n_embd": 16, "block_size": 16}
LSTM = {"name": "lstm_lm", "n_layer": 2, "n_embd": 16, "n_hidden": 32, "block_size": 16}
MLP = {"name": "mlp", "hidden": [32, 16]}
TEXT, DIGITS = {"name": "shakespeare_char"}, {"name": "digits"}
STANDARD = {"name": "standard", "p": 0.1}


def study(folder: Path, model: dict, data: dict, dropout: list, **extra) -> Path:
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump({"name": "refused", "model": model, "data": data,
                                    "dropout": dropout, **extra}))
    return path


def validate(path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["validate", str(path)])
    return result.exit_code, " ".join(result.output.split())


@pytest.mark.parametrize(("model", "data", "dropout", "key", "reason"), [
    (GPT, TEXT, [{"name": "standout"}], "dropout[0]", "pre-activation"),
    (GPT, TEXT, [{"name": "structured_rnn"}], "dropout[0]", "LSTM layers"),
    (GPT, TEXT, [{"name": "weight_drop"}], "dropout[0]", "LSTM layers"),
    (LSTM, TEXT, [STANDARD, {"name": "lr_drop", "gamma": 0.5}], "dropout[1]", "attention"),
    (MLP, DIGITS, [STANDARD, {"name": "lr_drop", "gamma": 0.5}], "dropout[1]", "attention"),
    (LSTM, TEXT, [{"name": "structured_rnn"}, {"name": "r_drop"}], "dropout[1]",
     "one mask for the whole batch"),
    (LSTM, TEXT, [{"name": "weight_drop"}, {"name": "lr_drop", "beta": 1.0, "gamma": 0.0}],
     "dropout[1]", "one mask for the whole batch"),
    (GPT, TEXT, [{"name": "r_drop"}], "dropout[0]", "no strategy of this trial drops units"),
    (LSTM, TEXT, [{"name": "layerdrop"}], "dropout[0]", "no layer of its stack can be skipped"),
    (MLP, DIGITS, [{"name": "layerdrop"}], "dropout[0]", "no layer of its stack can be skipped"),
    (GPT, TEXT, [STANDARD, {"name": "lr_drop", "layers": [0, 2]}], "dropout[1]",
     "layers [2] do not exist"),
    (GPT, TEXT, [{"name": "standard", "sites": ["attention", "recurrent"]}], "dropout[0]",
     "no recurrent dropout sites"),
])
def test_a_strategy_the_model_cannot_serve_is_refused(
        tmp_path: Path, model: dict, data: dict, dropout: list, key: str, reason: str) -> None:
    code, message = validate(study(tmp_path, model, data, dropout))
    assert code == 2, message
    strategy = dropout[int(key.removeprefix("dropout[").rstrip("]"))]["name"]
    assert f"{key}: {strategy!r}" in message and reason in message
    assert "Traceback" not in message


@pytest.mark.parametrize(("model", "data", "dropout"), [
    ({**LSTM, "n_hidden": 16}, TEXT, [{"name": "layerdrop"}]),
    ({"name": "mlp", "hidden": [32, 32]}, DIGITS, [{"name": "layerdrop"}]),
    (GPT, TEXT, [STANDARD, {"name": "layerdrop"}, {"name": "lr_drop", "top_layers": 1}]),
    (LSTM, TEXT, [{"name": "weight_drop"}, {"name": "standard", "sites": ["embedding"]},
                  {"name": "r_drop"}]),
])
def test_the_fixed_combinations_validate(tmp_path: Path, model: dict, data: dict,
                                         dropout: list) -> None:
    code, message = validate(study(tmp_path, model, data, dropout))
    assert code == 0, message


def test_every_option_of_a_choice_is_checked_before_any_trial(tmp_path: Path) -> None:
    space = {"dropout.0": {"type": "choice", "options": {
        "plain": {"value": STANDARD}, "adaptive": {"value": {"name": "standout"}}}}}
    code, message = validate(study(tmp_path, GPT, TEXT, [STANDARD],
                                   search={"n_trials": 2, "space": space}))
    assert code == 2
    assert "options.adaptive" in message and "'standout' cannot act on model 'gpt'" in message


def test_every_arm_is_checked_before_any_trial(tmp_path: Path) -> None:
    arms = {"plain": {"baseline": True}, "recurrent": {"dropout": [{"name": "weight_drop"}]}}
    code, message = validate(study(tmp_path, GPT, TEXT, [STANDARD], arms=arms))
    assert code == 2
    assert "arms.recurrent" in message and "'weight_drop' cannot act on model 'gpt'" in message


def test_run_refuses_it_too_and_creates_nothing(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    path = study(tmp_path / "in", GPT, TEXT, [{"name": "standout"}])
    work = tmp_path / "work"
    work.mkdir()
    result = cli("run", str(path), cwd=work)
    assert result.returncode == 2
    assert "dropout[0]" in result.stderr and "Traceback" not in result.stderr
    assert list(work.iterdir()) == []


def test_a_model_that_declares_nothing_is_checked_only_between_strategies() -> None:
    needs = [("standout", StrategyNeeds(site_kinds=frozenset({"hidden"}), pre_activation=True,
                                        masks="per_example")),
             ("r_drop", StrategyNeeds(independent_samples=True))]
    assert check_stack("mine", None, needs) == []
    caps = ModelCapabilities(site_kinds=frozenset({"residual"}))
    assert [key for key, _ in check_stack("mine", caps, needs)] == ["dropout[0]"]
