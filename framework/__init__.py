"""dropout-lab: declarative experiments for dropout research.

A study is a YAML file (model, data, training, dropout strategies, search space). It is validated
once by :func:`framework.config.load_spec`, searched by Optuna, and every trial is logged to MLflow.
Strategies are plugins: a pydantic config plus a :class:`DropoutStrategy` registered by name.

The public names below load on first use, so that ``dropout-lab --help`` stays fast; torch,
optuna and mlflow are imported only where they are used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING
from typing import Any


__version__ = "0.1.0"

_PUBLIC = {
    "DropoutStrategy": "framework.strategies.base",
    "LossResult": "framework.strategies.base",
    "RateConfig": "framework.strategies.base",
    "StrategyConfig": "framework.strategies.base",
    "SpecError": "framework.errors",
    "StrategyNeeds": "framework.contract",
    "list_strategies": "framework.registry",
    "register_strategy": "framework.registry",
}

__all__ = [
    "DropoutStrategy",
    "LossResult",
    "RateConfig",
    "SpecError",
    "StrategyConfig",
    "StrategyNeeds",
    "list_strategies",
    "register_strategy",
]

if TYPE_CHECKING:
    from framework.contract import StrategyNeeds
    from framework.errors import SpecError
    from framework.registry import list_strategies
    from framework.registry import register_strategy
    from framework.strategies.base import DropoutStrategy
    from framework.strategies.base import LossResult
    from framework.strategies.base import RateConfig
    from framework.strategies.base import StrategyConfig


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'framework' has no attribute {name!r}")
