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

    def attach(self, model: nn.Module, data_info: dict[str, Any] | None = None) -> None:
        """Attach every strategy to ``model``, after telling each the data's facts and
        connecting the schedules that drive another strategy's rate to that strategy.

        Args:
            model: the model to train.
            data_info: the dataset's ``info`` (``train_size``, ...), for strategies whose maths
                depends on the data (Concrete dropout's regulariser).
        """
        for strategy in self.strategies:
            strategy.data_info = dict(data_info or {})
        self._connect_drivers()
        for strategy in self.strategies:
            strategy.attach(model)

    def _connect_drivers(self) -> None:
        """Hand each schedule with ``drives: <strategy>.<rate>`` the strategy it drives.

        Validation already refused unknown, ambiguous or shared targets; this repeats the check
        for stacks built in code.
        """
        for strategy in self.strategies:
            needs = getattr(strategy.config, "needs", None)
            drives = needs().drives if needs is not None else ""
            if not drives:
                continue
            name, _, rate = drives.partition(".")
            targets = [s for s in self.strategies if s is not strategy and s.name == name]
            if len(targets) != 1 or rate not in targets[0].rates():
                raise ValueError(f"{strategy.name!r} drives {drives}, which is not the rate of "
                                 f"exactly one other strategy of this trial")
            strategy.drive(targets[0], rate)

    def on_step(self, step: int, total_steps: int) -> None:
        for strategy in self.strategies:
            strategy.on_step(step, total_steps)

    def on_eval(self, step: int, metrics: dict[str, float]) -> None:
        for strategy in self.strategies:
            strategy.on_eval(step, metrics)

    def compute_loss(self, model: nn.Module, batch: Any) -> LossResult:
        """The owner's loss (or the model's), plus every strategy's :meth:`extra_loss` terms."""
        if self.loss_owner is not None:
            result = self.loss_owner.compute_loss(model, batch)
        else:
            result = LossResult(model(batch).loss)
        for strategy in self.strategies:
            for name, term in strategy.extra_loss(model).items():
                if name in result.terms:
                    raise ValueError(f"{strategy.name!r} adds a loss term {name!r} that the "
                                     "trial already has")
                result.loss = result.loss + term
                result.terms[name] = term
        return result

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
