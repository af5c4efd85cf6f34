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


def evaluate(model: nn.Module, dataset: Any, spec: TrainSpec, device: torch.device,
             splits: tuple[str, ...] = ("train", "val")) -> dict[str, float]:
    """``{"<split>_loss": ..., "val_<metric>": ...}`` on ``spec.eval_batches`` fixed batches."""
    metrics: dict[str, float] = {}
    for split in splits:
        metrics.update(_score(model, dataset, spec, device, split, per_example=False)[0])
    return metrics


def score_held_out(model: nn.Module, dataset: Any, spec: TrainSpec, device: torch.device,
                   split: str) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """``split``'s metrics as :func:`evaluate` gives them, and its per-example scores, from one
    pass over it (a held-out split is read whole, so a second pass would double its cost).

    A verdict's interval counts the test examples as a sample too (which examples happen to form
    the test set), so it needs every example's score, not only their mean. A row is one example
    for a classifier and one scored window (block) for a language model, whose tokens are not
    independent. The per-example scores are ``<split>_loss`` and, where the dataset reports
    them, ``<split>_bpc`` (language models) or ``<split>_accuracy`` and ``<split>_error``
    (classifiers).
    """
    return _score(model, dataset, spec, device, split, per_example=True)


@torch.no_grad()
def _score(model: nn.Module, dataset: Any, spec: TrainSpec, device: torch.device, split: str,
           per_example: bool) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """One pass over ``split``: the mean over batches of the loss and of the dataset's metrics
    (not for ``train``), and with ``per_example`` each row's scores."""
    was_training = model.training
    model.eval()
    sums: dict[str, float] = defaultdict(float)
    n = 0
    losses: list[torch.Tensor] = []
    correct: list[torch.Tensor] = []
    extra = getattr(dataset, "metrics", None) if split != "train" else None
    try:
        for batch in dataset.eval_batches(split, spec.batch_size, spec.eval_batches):
            batch = batch.to(device)
            with autocast(device):
                out = model(batch)
            sums["loss"] += out.loss.item()
            for name, value in (extra(out, batch) if extra is not None else {}).items():
                sums[name] += value
            n += 1
            if per_example:
                row_loss, row_correct = _rows(out.logits.float(), batch.targets)
                losses.append(row_loss.cpu())
                if row_correct is not None:
                    correct.append(row_correct.cpu())
    finally:
        model.train(was_training)
    metrics = {f"{split}_{name}": total / max(n, 1) for name, total in sums.items()}
    if not losses:
        return metrics, {}
    loss = torch.cat(losses).double().numpy()
    scores = {"loss": loss, "bpc": loss / math.log(2)}
    if correct:
        hits = torch.cat(correct).double().numpy()
        scores |= {"accuracy": hits, "error": 1.0 - hits}
    return metrics, {f"{split}_{name}": values for name, values in scores.items()
                     if f"{split}_{name}" in metrics}


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
