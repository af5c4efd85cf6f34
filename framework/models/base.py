"""What every reference model returns and exposes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field

import torch
from torch import nn

from framework.contract import ModelCapabilities


@dataclass
class ModelOutput:
    """Logits, the loss when targets were given, and per-layer tensors when asked for."""

    logits: torch.Tensor
    loss: torch.Tensor | None = None
    hidden_states: list[torch.Tensor] = field(default_factory=list)
    """Output of each layer of the stack that ran (asked with ``need_hidden=True``)."""
    attentions: list[torch.Tensor] = field(default_factory=list)
    """Attention probabilities (B, heads, T, T) of each layer (``need_attention=True``)."""
    layer_ids: list[int] = field(default_factory=list)
    """The model's own index of each layer in ``hidden_states``/``attentions`` (LayerDrop skips
    some layers, so position and index differ)."""
    n_layers: int = 0
    """Depth of the model's stack."""


class LayeredModel(nn.Module):
    """A model whose repeated layers live in one ``nn.ModuleList`` (``self.layers``).

    LayerDrop and depth pruning act on that list; the forward pass must iterate over it
    (``for layer in self.layers``) so a replacement list that skips layers takes effect.
    """

    layers: nn.ModuleList

    def layer_stack(self) -> nn.ModuleList:
        return self.layers

    def layers_to_run(self) -> Iterator[tuple[int, nn.Module]]:
        """``(index, layer)`` for each layer that runs in this forward pass, in order."""
        layers = iter(self.layers)  # a LayerDropList draws which layers run here
        return zip(getattr(self.layers, "last_kept", range(len(self.layers))), layers,
                   strict=False)

    def capabilities(self) -> ModelCapabilities | None:
        """What the model offers to strategies, as its spec declares it."""
        spec = getattr(self, "spec", None)
        return spec.capabilities() if spec is not None else None
