"""In-memory classification data (images or feature vectors with integer labels) in fixed splits.

Shared by the digits and MNIST datasets. Training batches are drawn uniformly with replacement.
Evaluation scores ``val`` and ``test`` over the whole split in one batch: the evaluation loop
averages its metrics over batches with equal weight, so one batch makes the accuracy exact (and a
few thousand small images fit easily). ``train`` is scored on a fixed subset of
``n_batches * batch_size`` examples, as a language model's train loss is, to keep evaluation cheap.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from framework.data.base import Batch


class ClassificationData:
    """Splits ``{name: (inputs, labels)}``; ``test`` is scored once, on the best checkpoint."""

    final_splits = ("test",)

    def __init__(self, splits: dict[str, tuple[torch.Tensor, torch.Tensor]], num_classes: int):
        for name in ("train", "val", "test"):
            if name not in splits or len(splits[name][1]) == 0:
                raise ValueError(f"the {name!r} split is missing or empty")
        self.splits = splits
        inputs = splits["train"][0]
        self.info = {
            "input_dim": int(inputs[0].numel()),
            "input_shape": tuple(inputs.shape[1:]),
            "num_classes": num_classes,
            "train_size": len(splits["train"][1]),
        }
        # A fixed order of training examples for the train-loss evaluation.
        self._train_order = torch.randperm(len(splits["train"][1]),
                                           generator=torch.Generator().manual_seed(1234))

    @staticmethod
    def _batch(inputs: torch.Tensor, labels: torch.Tensor) -> Batch:
        # The mask marks every row as a real example, so throughput counts examples, not pixels.
        return Batch(inputs, labels, torch.ones(len(labels), dtype=torch.bool))

    def train_batch(self, batch_size: int, generator: torch.Generator) -> Batch:
        inputs, labels = self.splits["train"]
        index = torch.randint(len(labels), (batch_size,), generator=generator)
        return self._batch(inputs[index], labels[index])

    def eval_batches(self, split: str, batch_size: int, n_batches: int) -> Iterator[Batch]:
        inputs, labels = self.splits[split]
        if split != "train":
            yield self._batch(inputs, labels)
            return
        index = self._train_order[: batch_size * n_batches]
        for chunk in index.split(batch_size):
            yield self._batch(inputs[chunk], labels[chunk])

    def metrics(self, out: Any, batch: Batch) -> dict[str, float]:
        """Accuracy and error rate (1 - accuracy) of the arg-max class."""
        accuracy = (out.logits.argmax(-1) == batch.targets).float().mean().item()
        return {"accuracy": accuracy, "error": 1.0 - accuracy}
