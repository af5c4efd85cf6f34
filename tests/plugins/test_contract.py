"""Every registered strategy on every registered model: refused at validation, or measurably active.

A new plugin, built in or installed by entry point, is tested here with no new test code.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
import subprocess
import sys
from typing import Literal

from pydantic import Field
import pytest

from framework import registry
from framework.strategies.base import RateConfig
from framework.strategies.base import RateStrategy
from framework.testing.contract import ContractViolation
from framework.testing.contract import check_pair
from tests.registry.test_registry import make_installed_package


registry.discover()
STRATEGIES = registry.strategies.names()
EXAMPLES = [name for name in registry.models.names()
            if registry.models.get(name).config.EXAMPLE is not None]


def _missing(model: str) -> list[str]:
    """Packages of an optional extra that ``model`` needs and this environment lacks."""
    return [package for package in getattr(registry.models.get(model).config, "REQUIRES", ())
            if importlib.util.find_spec(package) is None]


MODELS = [name for name in EXAMPLES if not _missing(name)]
MODEL_PARAMS = [*MODELS, *(pytest.param(name, marks=pytest.mark.skipif(
    True, reason=f"model {name!r} needs {', '.join(_missing(name))} (pip install -e '.[hf]')"))
    for name in EXAMPLES if _missing(name))]

ACTIVE_ON_EVERY_MODEL = {"standard", "none", "linear_decay", "r_drop", "layerdrop"}
"""Strategies every built-in model must accept: the contract must not refuse everything."""


def default_config(name: str):
    return registry.strategies.get(name).config()


@pytest.mark.parametrize("name", STRATEGIES)
def test_defaults_validate_and_round_trip(name: str) -> None:
    config = default_config(name)
    schema = type(config)
    assert schema.model_validate(config.model_dump()) == config
    with pytest.raises(ValueError, match="Extra inputs"):
        schema.model_validate({**config.model_dump(), "no_such_field": 1})
    assert config.__doc__ and config.__doc__.strip(), "a config needs a one-line docstring"


@pytest.mark.parametrize("model", MODEL_PARAMS)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_strategy_is_refused_or_active(strategy: str, model: str) -> None:
    outcome = check_pair(strategy, model)
    if outcome.refused:
        assert strategy not in ACTIVE_ON_EVERY_MODEL, outcome.message
        assert f"model {model!r}" in outcome.message or "dropout[" in outcome.message


class BrokenConfig(RateConfig):
    """Claims dropout sites and then does nothing with them."""

    name: Literal["broken_claims"] = "broken_claims"
    p: float = Field(0.3, ge=0.0, lt=1.0)


class Broken(RateStrategy):
    def attach(self, model) -> None:
        self.sites = self.claim_sites(model)  # never sets a rate: the sites stay at 0
        self.kinds, self.current = [], 0.0

    def on_step(self, step: int, total_steps: int) -> None:
        pass


def test_contract_fails_on_a_plugin_that_claims_sites_and_does_nothing() -> None:
    registry.register_strategy("broken_claims", config=BrokenConfig)(Broken)
    try:
        with pytest.raises(ContractViolation, match="drops nothing"):
            check_pair("broken_claims", "gpt")
    finally:
        registry.strategies.remove("broken_claims")


@pytest.mark.slow
def test_an_entry_point_plugin_is_checked_by_the_same_test(tmp_path: Path) -> None:
    make_installed_package(tmp_path, "halfdrop_contract")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{Path.cwd()}"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", __file__, "-q", "-p", "no:cacheprovider",
         "-k", "refused_or_active and halfdrop_contract"],
        capture_output=True, text=True, env=env, cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stdout[-2000:]
    assert f"{len(MODELS)} passed" in result.stdout
