"""MC dropout: keep the trial's dropout on at evaluation and average T predictive distributions.

Gal and Ghahramani, "Dropout as a Bayesian Approximation: Representing Model Uncertainty in Deep
Learning", ICML 2016. After training, the best checkpoint is scored on every split it is scored on
(``val``, and ``test`` where the dataset has one) twice, on the same targets: deterministically,
and with ``samples`` passes whose dropout sites (and residual-branch hooks) stay on, their
predictive distributions averaged (:mod:`framework.training.mc`). Final metrics, for ``val`` (and
``test`` likewise): ``mc_val_nll``, ``mc_val_accuracy``, ``mc_val_ece`` (expected calibration
error, ``bins`` equal-width bins), ``mc_val_entropy`` (mean predictive entropy, nats) and
``mc_val_loss`` (the mean of the passes' own losses), beside the deterministic ``det_val_nll``,
``det_val_accuracy``, ``det_val_ece`` and ``det_val_entropy``, and the paired differences
``mc_minus_det_val_nll`` (and ``_accuracy``, ``_ece``, ``_entropy``): MC minus deterministic on
the same checkpoint and targets, so that ``compare`` gives the difference's mean and confidence
interval over seeds (the paired test of the claim). Any of the ``val`` ones may be a study
objective. For a language model every token is one prediction.

Why a strategy and not an option of ``train``: it changes nothing in training, so it composes with
any dropout list as one more entry (``[{name: standard, p: 0.1}, {name: mc_dropout}]``); its
settings get a schema and ``plugins show`` like every strategy; its metrics are declared like
every strategy's (so objectives may name them); and validation refuses it, naming it, in a trial
where no other strategy drops anything (MC averaging would then repeat one deterministic pass).
The passes draw from their own random stream (``seed``), so they neither depend on nor disturb
the training's. Dropout inside LSTM layers (recurrent masks of ``structured_rnn``, ``locked`` or
``weight_drop``) stays off: only sites and residual branches sample.
"""

from __future__ import annotations

from typing import ClassVar
from typing import Literal

from pydantic import Field

from framework.contract import StrategyNeeds
from framework.registry import register_strategy
from framework.strategies.base import DropoutStrategy
from framework.strategies.base import StrategyConfig
from framework.strategies.base import TrainedModel


SCORES = ("nll", "accuracy", "ece", "entropy")
DIFFERENCE = "mc_minus_det"
"""Prefix of the per-checkpoint differences, MC score minus deterministic score."""


class MCDropoutConfig(StrategyConfig):
    """T passes with dropout on at evaluation, averaged; calibration (Gal & Ghahramani 2016)."""

    name: Literal["mc_dropout"] = "mc_dropout"
    samples: int = Field(20, ge=2, le=10_000)
    """T, the stochastic passes averaged per example."""
    bins: int = Field(15, ge=1, le=1000)
    """Equal-width confidence bins of the expected calibration error."""
    seed: int = 0
    """Seed of the passes' random stream (the training's stream is left as it was)."""

    METRICS: ClassVar[tuple[str, ...]] = (
        "mc_val_loss", *(f"mc_val_{score}" for score in SCORES),
        *(f"det_val_{score}" for score in SCORES),
        *(f"{DIFFERENCE}_val_{score}" for score in SCORES),
    )

    def needs(self) -> StrategyNeeds:
        return StrategyNeeds(samples_at_eval=True)


@register_strategy("mc_dropout", config=MCDropoutConfig)
class MCDropout(DropoutStrategy):
    """Scores the best checkpoint deterministically and with MC dropout after training."""

    config: MCDropoutConfig

    def after_training(self, trained: TrainedModel) -> dict[str, float]:
        import torch

        from framework.training.mc import mc_evaluate

        if trained.eval_batches is None:
            raise ValueError(f"{self.name!r} needs the evaluation batches of the trained model")
        device = next(trained.model.parameters()).device
        metrics: dict[str, float] = {}
        for split in trained.splits:
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                torch.manual_seed(self.config.seed)
                scores = mc_evaluate(trained.model, trained.eval_batches(split),
                                     self.config.samples, self.config.bins)
            for kind, values in scores.items():
                metrics.update({f"{kind}_{split}_{name}": v for name, v in values.items()})
            metrics.update({f"{DIFFERENCE}_{split}_{name}": scores["mc"][name] - value
                            for name, value in scores["det"].items()})
        return metrics
