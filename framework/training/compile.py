"""``train.compile``: ``torch.compile`` for the training forward pass, without a graph per rate.

A dropout schedule changes a site's rate at every step. Read as a Python float, each new rate
would be a constant of the compiled graph and cost a recompilation; the sites therefore hand the
compiled graph their rate as a tensor (see :mod:`framework.models.sites`) and specialise it only on
whether the rate is 0, so a decay compiles at most two graphs for training (plus one for
evaluation). Strategies whose forward pass changes shape from step to step cannot be compiled
that way: for them the trial trains eagerly and the reason is logged.
"""

from __future__ import annotations

import logging
from typing import Any

from torch import nn

from framework.config.sections import TrainSpec


BACKEND = "inductor"
"""The ``torch.compile`` backend (tests use ``eager``: recompilation is decided before it)."""
_log = logging.getLogger(__name__)


def compile_model(model: nn.Module, spec: TrainSpec, strategies: Any) -> str | None:
    """Compile ``model``'s forward pass in place when ``spec.compile`` asks for it.

    The module stays the same object (its state dict, sites and strategies are untouched);
    only its calls go through the compiled code.

    Returns:
        Why the model was left eager although compilation was asked for (also logged as a
        warning), or None.
    """
    if not spec.compile:
        return None
    reason = eager_reason(strategies)
    if reason is not None:
        _log.warning("train.compile: training eagerly: %s", reason)
        return reason
    model.compile(backend=BACKEND)
    return None


def eager_reason(strategies: Any) -> str | None:
    """Why the trial's strategies (a ``StrategyStack``) or this platform rule compilation out."""
    import torch._dynamo

    if not torch._dynamo.is_dynamo_supported():
        return "torch.compile does not support this Python or platform"
    for strategy in getattr(strategies, "strategies", ()):
        needs = getattr(strategy.config, "needs", None)
        if needs is not None and needs().skip_layers:
            return (f"{strategy.name!r} runs a different set of layers at every step, and each "
                    "set would be a graph of its own")
    return None
