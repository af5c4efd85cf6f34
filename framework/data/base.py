"""The batch type every dataset yields and every model consumes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from typing import Protocol

import torch


@dataclass
class Batch:
    """Model inputs, targets, and an optional padding mask (True for real tokens)."""

    inputs: torch.Tensor
    targets: torch.Tensor | None = None
    mask: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> Batch:
        move = lambda t: None if t is None else t.to(device, non_blocking=True)  # noqa: E731
        return Batch(move(self.inputs), move(self.targets), move(self.mask))

    @property
    def n_tokens(self) -> int:
        """Tokens (or examples, for non-sequence inputs) in the batch, for throughput."""
        if self.mask is not None:
            return int(self.mask.sum())
        return self.inputs.shape[0] * (self.inputs.shape[1] if self.inputs.dim() > 1 else 1)


class Dataset(Protocol):
    """What the training loop needs from a dataset."""

    info: dict[str, Any]
    """Facts the model is built from, e.g. ``vocab_size`` or ``num_classes``."""

    def train_batch(self, batch_size: int, generator: torch.Generator) -> Batch:
        """A random training batch."""
        ...

    def eval_batches(self, split: str, batch_size: int, n_batches: int) -> Iterator[Batch]:
        """The same ``n_batches`` batches of ``split`` every call, so evaluations compare."""
        ...
