"""Structured dropout for LSTMs that shrinks the matrix products ("case III").

Sarma, Shen, et al., "Structured in Space, Randomized in Time: Leveraging Dropout in RNNs for
Efficient Training", NeurIPS 2021. One set of kept hidden units is shared by every example of the
batch and drawn anew at each time step (rate ``p``; case IV: one set per sequence). The mask is
applied to the LSTM's hidden output ``h_t`` where it feeds the recurrent product
``h_t W_hh^T`` and the next layer, the k kept units of H scaled by H/k. Because whole columns of
``h_t`` are zero, the recurrent product runs on the kept units only, in forward and backward (weight
gradient only for the kept rows of ``W_hh^T``, input gradient only for the kept columns): the
paper reports 1.23x-1.64x faster training with no loss in quality.

The model side lives in :mod:`framework.models.lstm` (``LSTMLayer.structured_*``); this plugin
sets it on every :class:`~framework.models.lstm.LSTMLayer` of the model (a model without them is
refused when the study is validated). Per-step masks use the compiled kernels of
:mod:`framework.models.kernels` where they build, which read the kept rows in place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Literal

from pydantic import Field

from framework.contract import StrategyNeeds
from framework.registry import register_strategy
from framework.strategies.base import DropoutStrategy
from framework.strategies.base import StrategyConfig


if TYPE_CHECKING:
    from torch import nn


class StructuredRNNConfig(StrategyConfig):
    """Batch-shared hidden-unit masks, new at every step, with compact LSTM products."""

    name: Literal["structured_rnn"] = "structured_rnn"
    p: float = Field(0.3, ge=0.0, lt=1.0)
    """Fraction of hidden units dropped at each draw (round(p * hidden) units)."""
    sites: list[Literal["recurrent", "hidden"]] = Field(
        default_factory=lambda: ["recurrent", "hidden"], min_length=1)
    """Where the mask applies: ``recurrent`` (h_{t-1} into W_hh), ``hidden`` (into the next
    layer)."""
    per_step: bool = True
    """A new mask at every time step (case III, the paper's); False: one per sequence (case IV)."""
    dense: bool = False
    """Run the dense reference path (full products, same masks) instead of the compact one."""

    def claimed_kinds(self) -> frozenset[str]:
        return frozenset(self.sites)

    def needs(self) -> StrategyNeeds:
        return StrategyNeeds(site_kinds=self.claimed_kinds(),
                             every_site_kind="sites" in self.model_fields_set,
                             recurrent_cells=True, masks="per_batch")


@register_strategy("structured_rnn", config=StructuredRNNConfig)
class StructuredRNN(DropoutStrategy):
    """Sets structured dropout on the model's LSTM layers."""

    config: StructuredRNNConfig

    def attach(self, model: nn.Module) -> None:
        from framework.models.lstm import LSTMLayer

        # Claiming the site kinds keeps another strategy from dropping the same units again.
        self.claim_sites(model)
        layers = [m for m in model.modules() if isinstance(m, LSTMLayer)]
        for n, layer in enumerate(layers):
            layer.structured_p = self.config.p
            layer.structured_per_step = self.config.per_step
            layer.structured_dense = self.config.dense
            layer.structured_recurrent = "recurrent" in self.config.sites
            # The last layer's output goes to the decoder: that is the ``output`` site's business.
            layer.structured_output = "hidden" in self.config.sites and n < len(layers) - 1
        self.n_layers = len(layers)
        if self.config.per_step and not self.config.dense and layers:
            from framework.models import kernels

            kernels.load()  # built here (once per machine), not within the timed training steps

    def log_values(self) -> dict[str, float]:
        return {"rate/structured": float(self.config.p)} if self.n_layers else {}
