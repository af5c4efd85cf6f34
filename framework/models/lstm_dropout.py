"""Dropout ops for recurrent models that plugins install: locked (variational) masks.

Variational dropout (Gal & Ghahramani, "A Theoretically Grounded Application of Dropout in
Recurrent Neural Networks", NeurIPS 2016): each example draws one mask per sequence and reuses it
at every time step, on the inputs, between layers, on the recurrent state and before the output;
AWD-LSTM (Merity, Keskar & Socher 2018) calls it locked dropout.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class LockedDropout(nn.Module):
    """One Bernoulli(1-p) mask per example and feature, the same at every time step.

    Whole sequences ``(B, T, C)`` (or ``(T, B, C)`` with ``time_dim=0``, as the LSTM LM passes)
    get a mask broadcast over time. Inside a recurrence the site sees one step ``(B, C)`` at a
    time with ``step=t``: the mask is drawn at step 0 and reused until the next sequence.
    """

    def __init__(self, p: float):
        super().__init__()
        self.p = p
        self._step_mask: torch.Tensor | None = None

    def _draw(self, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        keep = 1.0 - self.p
        return like.new_empty(shape).bernoulli_(keep).div_(keep)

    def sequence_mask(self, state: torch.Tensor) -> torch.Tensor | None:
        """The mask for a recurrent state shaped as ``state`` over a whole sequence, drawn as
        the per-step call draws it at step 0, so that a recurrence that applies it itself (our
        fused LSTM) sees the same mask as one calling this op at every step; None when nothing
        is dropped."""
        if not self.training or self.p == 0.0:
            return None
        self._step_mask = self._draw(tuple(state.shape), state)
        return self._step_mask

    def forward(self, x: torch.Tensor, **context: Any) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        step = context.get("step")
        if step is not None:
            if step == 0 or self._step_mask is None or self._step_mask.shape != x.shape:
                self._step_mask = self._draw(tuple(x.shape), x)
            return x * self._step_mask
        if x.dim() < 3:  # no time axis: ordinary dropout
            return x * self._draw(tuple(x.shape), x)
        time_dim = int(context.get("time_dim", 1))
        shape = list(x.shape)
        shape[time_dim] = 1
        return x * self._draw(tuple(shape), x)
