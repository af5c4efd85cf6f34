"""Monte Carlo dropout at evaluation, and the calibration metrics it is judged by.

Gal and Ghahramani, "Dropout as a Bayesian Approximation: Representing Model Uncertainty in Deep
Learning", ICML 2016: keeping dropout on at test time and averaging the predictive distributions
of T stochastic passes, p(y|x) ~ (1/T) sum_t softmax(f_t(x)), approximates the predictive
distribution of a Bayesian network. :func:`mc_evaluate` scores one split both ways, on the same
model and the same targets: deterministically (dropout off) and with T passes whose dropout sites
and residual-branch hooks are on while the rest of the model stays in evaluation mode (a recurrent
model then starts each window from a zero state, as in ordinary evaluation, and a LayerDrop stack
runs every layer).

Metrics, over every scored target (examples, or tokens for language models; targets equal to
``IGNORE`` are left out): ``nll`` (negative log-likelihood of the predictive distribution; for
the MC one, log p(y|x) = logsumexp_t log p_t(y|x) - log T, computed without underflow),
``accuracy`` of its arg-max, ``ece`` (expected calibration error over equal-width confidence bins,
Guo et al., ICML 2017: sum_b |B_b|/n * |accuracy(B_b) - confidence(B_b)|), ``entropy`` (mean
entropy of the predictive distribution, nats); for MC also ``loss``, the mean of the T passes'
own losses (each pass's NLL; by Jensen's inequality at least the MC ``nll``).
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field
import math
from typing import Any

import torch
from torch import nn
import torch.nn.functional as F

from framework.models.sites import DropoutSite
from framework.models.sites import ResidualBranch
from framework.training.device import autocast


IGNORE = -100
"""Targets left out of every metric (``F.cross_entropy``'s default ``ignore_index``)."""


@contextmanager
def dropout_at_eval(model: nn.Module) -> Iterator[nn.Module]:
    """The model in evaluation mode except its dropout sites and residual-branch hooks (with the
    ops strategies put on them), which sample as in training; restored afterwards."""
    was_training = model.training
    model.eval()
    for module in model.modules():
        if isinstance(module, DropoutSite | ResidualBranch):
            module.train()
    try:
        yield model
    finally:
        model.train(was_training)


def scored(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits ``(M, classes)`` and targets ``(M,)`` of the targets that count (not ``IGNORE``)."""
    flat_logits = logits.reshape(-1, logits.size(-1)).float()
    flat_targets = targets.reshape(-1)
    keep = flat_targets != IGNORE
    return flat_logits[keep], flat_targets[keep]


def bin_index(confidence: torch.Tensor, bins: int) -> torch.Tensor:
    """The bin of each confidence: bin b holds (b/bins, (b+1)/bins]; 0 goes to the first."""
    return (torch.ceil(confidence * bins).long() - 1).clamp(0, bins - 1)


@dataclass
class Predictive:
    """Running sums over the scored targets of a split, for :meth:`metrics`."""

    bins: int = 15
    n: int = 0
    nll: float = 0.0
    correct: float = 0.0
    entropy: float = 0.0
    bin_count: torch.Tensor = field(init=False)
    bin_confidence: torch.Tensor = field(init=False)
    bin_correct: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        self.bin_count = torch.zeros(self.bins, dtype=torch.float64)
        self.bin_confidence = torch.zeros(self.bins, dtype=torch.float64)
        self.bin_correct = torch.zeros(self.bins, dtype=torch.float64)

    def add(self, probs: torch.Tensor, log_likelihood: torch.Tensor,
            targets: torch.Tensor) -> None:
        """Add targets ``(M,)`` with their predictive distributions ``(M, classes)`` and the log
        probability each gives its target ``(M,)``."""
        confidence, predicted = probs.max(-1)
        hits = (predicted == targets).double()
        index = bin_index(confidence, self.bins).cpu()
        self.n += len(targets)
        self.nll -= float(log_likelihood.double().sum())
        self.correct += float(hits.sum())
        self.entropy += float(torch.special.entr(probs.double()).sum())
        self.bin_count += torch.bincount(index, minlength=self.bins).double()
        self.bin_confidence.index_add_(0, index, confidence.double().cpu())
        self.bin_correct.index_add_(0, index, hits.cpu())

    def metrics(self) -> dict[str, float]:
        """``nll``, ``accuracy``, ``ece`` and ``entropy`` (means over the scored targets)."""
        n = max(self.n, 1)
        return {"nll": self.nll / n, "accuracy": self.correct / n,
                "ece": float((self.bin_correct - self.bin_confidence).abs().sum()) / n,
                "entropy": self.entropy / n}


def expected_calibration_error(confidence: torch.Tensor, correct: torch.Tensor,
                               bins: int = 15) -> float:
    """ECE of predictions with these confidences (max probabilities) and correctness (0/1)."""
    confidence, correct = confidence.detach().cpu(), correct.detach().cpu()
    index = bin_index(confidence, bins)
    gap = torch.zeros(bins, dtype=torch.float64)
    gap.index_add_(0, index, correct.double() - confidence.double())
    return float(gap.abs().sum()) / max(len(confidence), 1)


@torch.no_grad()
def mc_evaluate(model: nn.Module, batches: Iterable[Any], samples: int,
                bins: int = 15) -> dict[str, dict[str, float]]:
    """Score ``batches`` deterministically and with ``samples`` MC-dropout passes.

    For each batch: one pass with dropout off, then ``samples`` passes with the sites on, in that
    order (so a seeded run repeats exactly). Returns ``{"det": metrics, "mc": metrics}`` (see the
    module docstring; ``mc`` adds ``loss``).
    """
    device = next(model.parameters()).device
    deterministic, averaged = Predictive(bins), Predictive(bins)
    pass_nll, was_training = 0.0, model.training
    try:
        for batch in batches:
            model.eval()
            with autocast(device):
                logits, targets = scored(model(batch).logits, batch.targets)
            log_probs = F.log_softmax(logits, dim=-1)
            deterministic.add(log_probs.exp(), log_probs.gather(1, targets[:, None])[:, 0],
                              targets)
            total = torch.zeros_like(log_probs)
            target_log_probs = []
            with dropout_at_eval(model):
                for _ in range(samples):
                    with autocast(device):
                        logits = scored(model(batch).logits, batch.targets)[0]
                    log_probs = F.log_softmax(logits, dim=-1)
                    total += log_probs.exp()
                    target_log_probs.append(log_probs.gather(1, targets[:, None])[:, 0])
            stacked = torch.stack(target_log_probs)  # (samples, M)
            pass_nll -= float(stacked.double().sum())
            averaged.add(total / samples, torch.logsumexp(stacked, 0) - math.log(samples),
                         targets)
    finally:
        model.train(was_training)
    mc = averaged.metrics()
    mc["loss"] = pass_nll / max(averaged.n * samples, 1)
    return {"det": deterministic.metrics(), "mc": mc}
