"""Inference throughput: tokens (or examples) per second of the model in eval mode."""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn

from framework.config.sections import TrainSpec
from framework.training.device import autocast


@torch.no_grad()
def inference_tokens_per_sec(model: nn.Module, dataset: Any, spec: TrainSpec,
                             device: torch.device, repeats: int = 3) -> float:
    """Median throughput of forward passes over the validation batches, dropout off.

    One warm-up pass first, so allocation and kernel selection are not timed.
    """
    was_training = model.training
    model.eval()
    batches = [b.to(device) for b in dataset.eval_batches("val", spec.batch_size,
                                                          min(spec.eval_batches, 10))]
    tokens = sum(b.n_tokens for b in batches)
    rates = []
    try:
        for attempt in range(repeats + 1):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            with autocast(device):
                for batch in batches:
                    model(batch)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if attempt:  # the first pass is the warm-up
                rates.append(tokens / (time.perf_counter() - start))
    finally:
        model.train(was_training)
    return sorted(rates)[len(rates) // 2]
