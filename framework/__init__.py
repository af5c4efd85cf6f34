"""dropout-lab: declarative experiments for dropout research.

A study is a YAML file (model, data, training, dropout strategies, search space). It is validated
once by :func:`framework.config.load_spec`, searched by Optuna, and every trial is logged to MLflow.
Strategies are plugins: a pydantic config plus a :class:`DropoutStrategy` registered by name.

Only light modules are imported here so that ``dropout-lab --help`` and ``validate`` stay fast;
torch, optuna and mlflow are imported where they are used.
"""

from framework.errors import SpecError
from framework.registry import list_strategies
from framework.registry import register_strategy
from framework.strategies.base import DropoutStrategy
from framework.strategies.base import LossResult
from framework.strategies.base import RateConfig
from framework.strategies.base import StrategyConfig


__version__ = "0.1.0"

__all__ = [
    "DropoutStrategy",
    "LossResult",
    "RateConfig",
    "SpecError",
    "StrategyConfig",
    "list_strategies",
    "register_strategy",
]
