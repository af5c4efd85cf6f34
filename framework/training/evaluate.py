"""Evaluation: mean loss (and the dataset's own metrics) over fixed batches, dropout off."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch
from torch import nn

from framework.config.sections import TrainSpec
from framework.training.device import autocast


@torch.no_grad()
def evaluate(model: nn.Module, dataset: Any, spec: TrainSpec, device: torch.device,
             splits: tuple[str, ...] = ("train", "val")) -> dict[str, float]:
    """``{"<split>_loss": ..., "val_<metric>": ...}`` on ``spec.eval_batches`` fixed batches."""
    was_training = model.training
    model.eval()
    metrics: dict[str, float] = {}
    extra = getattr(dataset, "metrics", None)
    try:
        for split in splits:
            sums: dict[str, float] = defaultdict(float)
            n = 0
            for batch in dataset.eval_batches(split, spec.batch_size, spec.eval_batches):
                batch = batch.to(device)
                with autocast(device):
                    out = model(batch)
                sums["loss"] += out.loss.item()
                if extra is not None and split != "train":
                    for name, value in extra(out, batch).items():
                        sums[name] += value
                n += 1
            metrics.update({f"{split}_{name}": total / max(n, 1) for name, total in sums.items()})
    finally:
        model.train(was_training)
    return metrics
