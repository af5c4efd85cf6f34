"""Evaluation: mean loss (and the dataset's own metrics) over fixed batches, dropout off."""

from __future__ import annotations

from collections import defaultdict
import math
from typing import Any

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from framework.config.sections import TrainSpec
from framework.training.device import autocast


IGNORE = -100
"""Targets no score counts (``F.cross_entropy``'s default ``ignore_index``)."""


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


@torch.no_grad()
def example_scores(model: nn.Module, dataset: Any, spec: TrainSpec, device: torch.device,
                   split: str) -> dict[str, np.ndarray]:
    """Per-example scores of ``split``, one value per row of its evaluation batches.

    A verdict's interval counts the test examples as a sample too (which examples happen to form
    the test set), so it needs every example's score, not only their mean. A row is one example
    for a classifier and one scored window (block) for a language model, whose tokens are not
    independent. Returns ``{"<split>_loss": ..., "<split>_bpc": ...}`` for language models and
    ``{"<split>_loss": ..., "<split>_accuracy": ..., "<split>_error": ...}`` for classifiers,
    only the names the dataset's own metrics report (besides the loss).
    """
    was_training = model.training
    model.eval()
    losses: list[torch.Tensor] = []
    correct: list[torch.Tensor] = []
    reported: set[str] = {"loss"}
    extra = getattr(dataset, "metrics", None)
    try:
        for batch in dataset.eval_batches(split, spec.batch_size, spec.eval_batches):
            batch = batch.to(device)
            with autocast(device):
                out = model(batch)
            if extra is not None:
                reported |= set(extra(out, batch))
            row_loss, row_correct = _rows(out.logits.float(), batch.targets)
            losses.append(row_loss.cpu())
            if row_correct is not None:
                correct.append(row_correct.cpu())
    finally:
        model.train(was_training)
    loss = torch.cat(losses).double().numpy()
    scores = {"loss": loss, "bpc": loss / math.log(2)}
    if correct:
        hits = torch.cat(correct).double().numpy()
        scores |= {"accuracy": hits, "error": 1.0 - hits}
    return {f"{split}_{name}": values for name, values in scores.items() if name in reported}


def _rows(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor,
                                                                 torch.Tensor | None]:
    """Each row's mean cross-entropy over its scored targets (``-100`` left out), and for one
    target per row (a classifier) whether the arg-max class is right."""
    if targets.dim() == 1:
        loss = F.cross_entropy(logits, targets, reduction="none")
        return loss, (logits.argmax(-1) == targets)
    flat = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1),
                           reduction="none", ignore_index=IGNORE).view(targets.shape)
    scored = (targets != IGNORE).sum(dim=1).clamp(min=1)
    return flat.sum(dim=1) / scored, None
