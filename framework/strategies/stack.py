"""Several strategies composed in one trial: each hook is called on each strategy, in order."""

from __future__ import annotations

from typing import Any

from torch import nn

from framework.strategies.base import DropoutStrategy
from framework.strategies.base import LossResult
from framework.strategies.base import TrainedModel


class StrategyStack:
    """The strategies of one trial, applied in the order the spec lists them."""

    def __init__(self, strategies: list[DropoutStrategy]):
        self.strategies = strategies
        owners = [s for s in strategies if s.owns_loss]
        self.loss_owner = owners[0] if owners else None

    @classmethod
    def from_configs(cls, configs: list[Any]) -> StrategyStack:
        from framework.registry import create_strategy

        return cls([create_strategy(config) for config in configs])

    def attach(self, model: nn.Module) -> None:
        for strategy in self.strategies:
            strategy.attach(model)

    def on_step(self, step: int, total_steps: int) -> None:
        for strategy in self.strategies:
            strategy.on_step(step, total_steps)

    def on_eval(self, step: int, metrics: dict[str, float]) -> None:
        for strategy in self.strategies:
            strategy.on_eval(step, metrics)

    def compute_loss(self, model: nn.Module, batch: Any) -> LossResult:
        if self.loss_owner is not None:
            return self.loss_owner.compute_loss(model, batch)
        return LossResult(model(batch).loss)

    def for_inference(self, model: nn.Module) -> nn.Module:
        for strategy in self.strategies:
            model = strategy.for_inference(model)
        return model

    def after_training(self, trained: TrainedModel) -> dict[str, float]:
        metrics: dict[str, float] = {}
        for strategy in self.strategies:
            metrics.update(strategy.after_training(trained))
        return metrics

    def log_values(self) -> dict[str, float]:
        values: dict[str, float] = {}
        for strategy in self.strategies:
            values.update(strategy.log_values())
        return values

    def state_dict(self) -> list[dict[str, Any]]:
        return [strategy.state_dict() for strategy in self.strategies]

    def load_state_dict(self, states: list[dict[str, Any]]) -> None:
        for strategy, state in zip(self.strategies, states, strict=True):
            strategy.load_state_dict(state)
