"""What every reference model returns and exposes."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field

import torch
from torch import nn


@dataclass
class ModelOutput:
    """Logits, the loss when targets were given, and per-layer tensors when asked for."""

    logits: torch.Tensor
    loss: torch.Tensor | None = None
    hidden_states: list[torch.Tensor] = field(default_factory=list)
    """Output of each layer of the stack that ran (asked with ``need_hidden=True``)."""
    attentions: list[torch.Tensor] = field(default_factory=list)
    """Attention probabilities (B, heads, T, T) of each layer (``need_attention=True``)."""


class LayeredModel(nn.Module):
    """A model whose repeated layers live in one ``nn.ModuleList`` (``self.layers``).

    LayerDrop and depth pruning act on that list; the forward pass must iterate over it
    (``for layer in self.layers``) so a replacement list that skips layers takes effect.
    """

    layers: nn.ModuleList

    def layer_stack(self) -> nn.ModuleList:
        return self.layers
