"""LayerDrop as a layer stack: a ``nn.ModuleList`` whose iteration skips layers in training.

Fan, Grave and Joulin, "Reducing Transformer Depth on Demand with Structured Dropout", ICLR 2020.
During training every layer of the stack is dropped independently with its rate; a dropped layer
is the identity, so the residual stream passes through it unchanged. The draw is made once per
layer per forward pass (the whole batch skips the same layers), which is what saves compute: a
skipped layer runs no forward and, since it is not in the graph, no backward. Kept layers are not
rescaled, at training or at test time (unlike stochastic depth, Huang et al. 2016).

The rates come from a pure function (:func:`layer_rates`): the same rate for every layer, or a
rate rising linearly with depth as in stochastic depth, p_l = p * l / L for layer l = 1..L.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Iterator
from typing import Any
from typing import Literal

import torch
from torch import nn


Profile = Literal["uniform", "linear"]


def layer_rates(n_layers: int, p: float, profile: Profile = "uniform") -> list[float]:
    """Drop rate of each of ``n_layers`` layers (index 0 is nearest the input).

    Args:
        n_layers: depth of the stack.
        p: the rate of every layer (``uniform``) or of the last layer (``linear``).
        profile: ``uniform``, or ``linear``: p_l = p * l / L for the l-th layer, l = 1..L, so
            shallow layers are dropped least (Huang et al. 2016, eq. 4).

    Raises:
        ValueError: for a rate outside [0, 1] or an unknown profile.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"a layer drop rate must be in [0, 1], got {p}")
    if profile == "uniform":
        return [float(p)] * n_layers
    if profile == "linear":
        return [float(p) * (i + 1) / n_layers for i in range(n_layers)]
    raise ValueError(f"unknown rate profile {profile!r}; use 'uniform' or 'linear'")


class LayerDropList(nn.ModuleList):
    """A layer stack that yields only the layers kept for this forward pass in training.

    Any ``for layer in self.layers`` loop therefore skips layers with no change to the model.
    Indexing, ``len`` and the state dict are those of a plain ``nn.ModuleList`` (keys stay
    ``layers.<i>.…``), so checkpoints load into a model without LayerDrop.

    Once :meth:`bind` ties the list to its model, layers are skipped only inside that model's
    forward pass: code that walks the stack outside a forward (another strategy's ``attach``,
    an inspection) always sees every layer.

    Args:
        modules: the layers.
        rates: drop rate of each layer (see :func:`layer_rates`).
        generator: source of the draws; default torch's global generator, so ``torch.manual_seed``
            makes the skip pattern reproducible.
    """

    def __init__(self, modules: Iterable[nn.Module], rates: list[float],
                 generator: torch.Generator | None = None):
        super().__init__(modules)
        if len(rates) != len(self):
            raise ValueError(f"{len(rates)} rates for {len(self)} layers")
        self.rates = [float(r) for r in rates]
        self.generator = generator
        self.last_kept: list[int] = list(range(len(self)))
        """Indices of the layers that the latest iteration yielded."""
        self.bound = False
        self.forward_depth = 0
        self.layers_run = 0
        self.layers_seen = 0
        """Counts over training forward passes since :meth:`reset_counts`: layers run / offered."""

    def keep_pattern(self) -> list[int]:
        """Draw which layers run now: one uniform draw per layer, kept when u_i >= p_i."""
        if not any(self.rates):
            return list(range(len(self)))  # p = 0 draws nothing, so the RNG stream is untouched
        # The draw stays on the CPU: the decision is made in Python, so no device sync is needed.
        u = torch.rand(len(self), generator=self.generator).tolist()
        return [i for i, (ui, p) in enumerate(zip(u, self.rates, strict=True)) if ui >= p]

    def __iter__(self) -> Iterator[nn.Module]:
        layers = list(self._modules.values())
        if not self.training or (self.bound and self.forward_depth == 0):
            self.last_kept = list(range(len(layers)))
            return iter(layers)
        self.last_kept = self.keep_pattern()
        self.layers_run += len(self.last_kept)
        self.layers_seen += len(layers)
        return iter([layers[i] for i in self.last_kept])

    def __getitem__(self, index: int | slice) -> Any:
        # Some models iterate a slice of their stack (Llama: ``self.layers[:num_hidden_layers]``);
        # a slice that keeps every layer is the list itself, so the skipping still happens.
        if isinstance(index, slice) and range(len(self))[index] == range(len(self)):
            return self
        if isinstance(index, slice):
            return nn.ModuleList(list(self._modules.values())[index])
        return super().__getitem__(index)

    def reset_counts(self) -> None:
        self.layers_run = self.layers_seen = 0

    def bind(self, model: nn.Module) -> None:
        """Skip layers only while ``model`` (the owner of this list) runs its forward pass."""
        # Module-level hooks that look the list up on the model (no closures): a deep copy of the
        # model then keeps working hooks, and a copy whose stack was replaced ignores them.
        model.register_forward_pre_hook(_enter_forward)
        model.register_forward_hook(_leave_forward, always_call=True)
        self.bound = True

    def extra_repr(self) -> str:
        return f"rates={[round(r, 4) for r in self.rates]}"


def _enter_forward(model: nn.Module, args: Any) -> None:
    layers = getattr(model, "layers", None)
    if isinstance(layers, LayerDropList):
        layers.forward_depth += 1


def _leave_forward(model: nn.Module, args: Any, output: Any) -> None:
    layers = getattr(model, "layers", None)
    if isinstance(layers, LayerDropList):
        layers.forward_depth = max(0, layers.forward_depth - 1)


def wrap_layer_stack(model: nn.Module, rates: list[float] | float,
                     generator: torch.Generator | None = None) -> LayerDropList:
    """Replace ``model.layers`` (a plain ``nn.ModuleList``) by a bound :class:`LayerDropList`.

    Raises:
        TypeError: if the model has no plain ``nn.ModuleList`` ``layers`` (no stack, or another
            strategy already replaced it).
    """
    stack = getattr(model, "layers", None)
    if type(stack) is not nn.ModuleList:
        raise TypeError(
            f"LayerDrop needs a model whose layer stack `layers` is a plain nn.ModuleList "
            f"(see framework.models.base.LayeredModel); {type(model).__name__}.layers is "
            f"{type(stack).__name__}"
        )
    if isinstance(rates, float | int):
        rates = [float(rates)] * len(stack)
    wrapped = LayerDropList(stack, rates, generator)
    wrapped.train(stack.training)
    model.layers = wrapped
    wrapped.bind(model)
    return wrapped
