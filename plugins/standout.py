"""Standout (adaptive dropout): keep each unit with a probability set by its own input.

Ba & Frey, "Adaptive dropout for training deep neural networks", NIPS 2013. A binary belief
network overlaid on the network decides, per example and per hidden unit, whether the unit is
kept: ``m_j ~ Bernoulli(pi_j)``. In the tied form used in practice the belief network shares the
layer's weights, ``pi_j = sigmoid(alpha z_j + beta)`` with ``z_j`` the unit's pre-activation, so
units with large pre-activations are kept more often; ``alpha = 0`` is plain dropout with keep
probability ``sigmoid(beta)``. The mask is sampled in training and replaced by its expectation at
evaluation (``pi_j g(z_j)``, no rescaling). ``form: belief`` gives each layer its own belief
weights, initialised to the tied ones and learned jointly (the paper's general form).

The two public ports disagree on where beta goes: ``shift: pre_activation`` (default; mabirck's
PyTorch port and the paper's "magnitude" reading) adds beta once to ``alpha z``;
``shift: weights`` (gngdb's Lasagne port) uses belief weights ``alpha W + beta``, which adds
``beta sum_i a_i`` and, with many non-negative inputs, saturates the keep probability near 1
for beta > 0.

Works on sites that pass ``pre_activation`` (and ``inputs``): the ``hidden`` sites of the ``mlp``
model. Logs ``keep/<kind>.<i>`` (e.g. ``keep/hidden.0``), the mean keep probability of each layer
over the training passes since the last evaluation.
"""

from __future__ import annotations

from typing import Any
from typing import Literal

from pydantic import Field
from pydantic import model_validator

from framework.contract import StrategyNeeds
from framework.registry import register_strategy
from framework.strategies.base import DropoutStrategy
from framework.strategies.base import SiteKind
from framework.strategies.base import StrategyConfig


class StandoutConfig(StrategyConfig):
    """Adaptive dropout with keep probability sigmoid(alpha z + beta) (Ba & Frey 2013)."""

    name: Literal["standout"] = "standout"
    sites: list[SiteKind] = Field(default_factory=lambda: ["hidden"], min_length=1)
    """Kinds of site to gate; they must pass the pre-activation (the mlp's ``hidden`` sites)."""
    alpha: float = Field(0.5, ge=0.0, le=100.0)
    """Scale of the pre-activation in the keep logit; 0 gives plain dropout at sigmoid(beta).
    Default 0.5 and beta 1 as the public PyTorch port (said to follow the paper)."""
    beta: float = Field(1.0, ge=-20.0, le=20.0)
    """Shift of the keep logit."""
    shift: Literal["pre_activation", "weights"] = "pre_activation"
    """Where beta enters: once, on the pre-activation (default), or on every belief weight."""
    form: Literal["tied", "belief"] = "tied"
    """``tied``: belief weights = the layer's; ``belief``: own weights, learned jointly."""
    learn: bool = False
    """Learn alpha and beta with the network (tied form; the belief form always learns)."""

    @model_validator(mode="after")
    def _check(self) -> StandoutConfig:
        if self.form == "belief" and (self.learn or self.shift != "pre_activation"):
            raise ValueError("form 'belief' learns its own weights: leave `learn` and `shift` "
                             "at their defaults")
        return self

    def claimed_kinds(self) -> frozenset[str]:
        return frozenset(self.sites)

    def needs(self) -> StrategyNeeds:
        return StrategyNeeds(site_kinds=self.claimed_kinds(), every_site_kind=True,
                             pre_activation=True, replaces_op=True, masks="per_example")


@register_strategy("standout", config=StandoutConfig)
class Standout(DropoutStrategy):
    """Puts a standout gate on every claimed site; gates may add parameters (before the optimizer).

    Example::

        dropout: [{name: standout, alpha: 1.0, beta: 0.0}]
    """

    config: StandoutConfig

    def attach(self, model: Any) -> None:
        from framework.layers.standout import StandoutGate

        self.gates: list[tuple[str, Any]] = []
        parents = {id(child): module for module in model.modules()
                   for child in module.children()}
        counts: dict[str, int] = {}
        for site in self.claim_sites(model):
            # The layer that computes the site's pre-activation holds it as `linear`.
            linear = getattr(parents.get(id(site)), "linear", None)
            needs_weights = self.config.form == "belief" or self.config.shift == "weights"
            if needs_weights and linear is None:
                raise ValueError(f"standout with form={self.config.form!r}, "
                                 f"shift={self.config.shift!r} needs the layer's weights, but "
                                 f"the {site.kind!r} site has no `linear` beside it")
            gate = StandoutGate(self.config.alpha, self.config.beta, shift=self.config.shift,
                                learn=self.config.learn, linear=linear,
                                belief=self.config.form == "belief")
            site.op = gate
            index = counts[site.kind] = counts.get(site.kind, -1) + 1  # layer number per kind
            self.gates.append((f"keep/{site.kind}.{index}", gate))
        self._last: dict[str, float] = {}

    def log_values(self) -> dict[str, float]:
        for key, gate in self.gates:
            value = gate.mean_keep()
            if value is not None:
                self._last[key] = value
        return dict(self._last)
