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
        """The batch on ``device``; copies to a GPU go from pinned memory, without waiting."""
        pin = torch.device(device).type == "cuda" and torch.cuda.is_available()

        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            if t is None:
                return None
            # A copy from pageable memory blocks the host even with non_blocking=True.
            if pin and t.device.type == "cpu":
                t = t.pin_memory()
            return t.to(device, non_blocking=True)

        return Batch(move(self.inputs), move(self.targets), move(self.mask))

    @property
    def n_tokens(self) -> int:
        """Tokens (or examples, for non-sequence inputs) in the batch, for throughput."""
        if self.mask is not None:
            return int(self.mask.sum())
        return self.inputs.shape[0] * (self.inputs.shape[1] if self.inputs.dim() > 1 else 1)


def model_tokenizer(model: Any) -> Any | None:
    """The tokenizer that a model spec brings (a pretrained model's own), or None: the data then
    build their own vocabulary."""
    load = getattr(model, "load_tokenizer", None)
    return load() if load is not None else None


def pad_token_id(tokenizer: Any) -> int:
    """The id a tokenizer pads with: its pad token, else its end-of-text token (GPT-2 has no pad
    token), else 0. Padded positions are masked out, so only a model that looks for the padding
    (GPT-2's classifier finds the last real token by it) depends on the value."""
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if candidate is not None:
            return int(candidate)
    return 0


class Dataset(Protocol):
    """What the training loop needs from a dataset."""

    info: dict[str, Any]
    """Facts the model is built from, e.g. ``vocab_size`` or ``num_classes``, and
    ``train_size``: the training points the training loss averages over (examples, or tokens
    for language models), which strategies such as Concrete dropout scale by."""

    def train_batch(self, batch_size: int, generator: torch.Generator) -> Batch:
        """A random training batch."""
        ...

    def eval_batches(self, split: str, batch_size: int, n_batches: int) -> Iterator[Batch]:
        """The same ``n_batches`` batches of ``split`` every call, so evaluations compare."""
        ...


def leading_fraction(tokens: torch.Tensor, fraction: float) -> torch.Tensor:
    """The first ``fraction`` of ``tokens`` (at least one): a data-limited training split.

    The prefix, not a sample: the text stays contiguous (streams and windows read it in order)
    and every trial with the same fraction trains on the same text.
    """
    return tokens[: max(1, int(len(tokens) * fraction))]
