"""A fully connected classifier (multilayer perceptron) for flat or image inputs.

The permutation-invariant MNIST setting of dropout papers: Srivastava et al. (JMLR 2014) and Ba &
Frey, "Adaptive dropout for training deep neural networks" (NIPS 2013), whose MNIST net is
784-1000-1000-10. Inputs are flattened; every hidden layer is ``g(W a + b)`` followed by a
``hidden`` dropout site that also receives the layer's pre-activation ``z = W a + b`` and its input
``a`` as context, so that input-dependent dropout (standout) can compute keep probabilities from
them. An ``embedding`` site sits on the flattened input (input dropout). The hidden layers are
``self.layers``; the loss is cross-entropy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
import torch.nn.functional as F

from framework.models.base import LayeredModel
from framework.models.base import ModelOutput
from framework.models.sites import DropoutSite


ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": F.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "gelu": F.gelu,
}


class DenseLayer(nn.Module):
    """``g(z)`` with ``z = linear(a)``, then a ``hidden`` dropout site.

    The site gets ``pre_activation=z`` and ``inputs=a`` as keyword context; a strategy that needs
    the weights tied to the site finds them as ``linear`` on this layer.
    """

    def __init__(self, d_in: int, d_out: int, activation: str, bias: bool):
        super().__init__()
        self.linear = nn.Linear(d_in, d_out, bias=bias)
        self.activation = ACTIVATIONS[activation]
        self.drop = DropoutSite("hidden")

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        z = self.linear(a)  # (B, d_out)
        return self.drop(self.activation(z), pre_activation=z, inputs=a)


class MLP(LayeredModel):
    """Input dropout site, ``len(spec.hidden)`` dense layers, a linear classification head."""

    def __init__(self, spec: Any, info: dict[str, Any]):
        super().__init__()
        self.spec = spec
        widths = [int(info["input_dim"]), *spec.hidden]
        self.input_drop = DropoutSite("embedding")
        self.layers = nn.ModuleList(
            DenseLayer(d_in, d_out, spec.activation, spec.bias)
            for d_in, d_out in zip(widths[:-1], widths[1:], strict=True)
        )
        self.head = nn.Linear(widths[-1], int(info["num_classes"]), bias=spec.bias)

    def forward(self, batch: Any, *, need_hidden: bool = False,
                need_attention: bool = False) -> ModelOutput:
        x = self.input_drop(batch.inputs.flatten(1).float())  # (B, input_dim)
        out = ModelOutput(logits=x, n_layers=len(self.layers))
        for index, layer in self.layers_to_run():
            x = layer(x)
            if need_hidden:
                out.hidden_states.append(x)
                out.layer_ids.append(index)
        out.logits = self.head(x)  # (B, classes)
        if batch.targets is not None:
            out.loss = F.cross_entropy(out.logits, batch.targets)
        return out
