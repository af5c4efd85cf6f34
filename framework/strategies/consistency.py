"""Consistency between two dropout samples of one model: the losses of R-Drop and LR-Drop.

R-Drop (Liang et al., "R-Drop: Regularized Dropout for Neural Networks", NeurIPS 2021): each
example goes through the model twice with independent dropout masks, giving output distributions
P1 and P2, and the loss is the sum of both cross-entropies plus
alpha * 1/2 [KL(P1 || P2) + KL(P2 || P1)], gradients flowing through both sides (eq. 3).

LR-Drop (Ni et al., "Layer-wise Regularized Dropout for Neural Language Models", LREC-COLING
2024) adds the same pull at every layer: beta * sum_l d(H_l^1, H_l^2) on the hidden states and
gamma * sum_l (1/h) sum_heads d(A_l^1, A_l^2) on the attention probabilities.

Reductions (they set the scale of alpha, beta and gamma): each cross-entropy is the model's own
mean loss, and the two are summed as in the papers (``ce="mean"`` averages them); the output KL
is summed over classes (or the vocabulary) and averaged over examples (or real tokens); the
hidden-state distance is averaged over features and real tokens; the attention
distance is summed over keys (a whole attention row is one distribution) and averaged over real
query positions and heads. Pads never count: their rows, and their columns as keys, are left out.

The two samples come from one forward pass on the batch concatenated with itself: both halves see
the same weights and independent dropout masks (each site draws one mask for the whole tensor).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
import torch.nn.functional as F

from framework.data.base import Batch
from framework.models.base import ModelOutput
from framework.strategies.base import LossResult


@dataclass(frozen=True)
class Weights:
    """Weights and distances of the consistency terms; a weight of 0 skips its term."""

    alpha: float = 1.0
    """Output distributions: symmetric KL."""
    ce: Literal["sum", "mean"] = "sum"
    """The two cross-entropies summed (the papers' formula) or averaged."""
    beta: float = 0.0
    """Hidden states of each layer."""
    gamma: float = 0.0
    """Attention probabilities of each layer and head."""
    hidden_distance: Literal["mse", "cosine"] = "mse"
    attention_distance: Literal["mse", "kl"] = "mse"
    layers: tuple[int, ...] | None = None
    """The model's layers (0-based; negative counts from the top) for the layer-wise terms;
    None: all."""


def duplicate(batch: Batch) -> Batch:
    """The batch concatenated with itself along the batch dimension (2B rows)."""
    twice = lambda t: None if t is None else torch.cat([t, t], dim=0)  # noqa: E731
    return Batch(twice(batch.inputs), twice(batch.targets), twice(batch.mask))


def halves(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The two samples of a tensor computed on a duplicated batch."""
    first, second = t.chunk(2, dim=0)
    return first, second


def _mean_over(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``values`` over the positions where ``mask`` is True (all when None)."""
    if mask is None:
        return values.mean()
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp_min(1.0)


def _kl_rows(p_log: torch.Tensor, q_log: torch.Tensor) -> torch.Tensor:
    """KL(P || Q) summed over the last dimension, from finite log-probabilities."""
    return (p_log.exp() * (p_log - q_log)).sum(-1)


def symmetric_kl(logits_1: torch.Tensor, logits_2: torch.Tensor,
                 mask: torch.Tensor | None = None) -> torch.Tensor:
    """1/2 [KL(P1 || P2) + KL(P2 || P1)] of softmax(logits), averaged over examples or tokens.

    Args:
        logits_1: (B, K) per example, or (B, T, V) per token.
        logits_2: the same shape, from the other dropout sample.
        mask: (B, T) True for real tokens, for per-token logits; None counts every position.
    """
    log_1 = F.log_softmax(logits_1.float(), dim=-1)
    log_2 = F.log_softmax(logits_2.float(), dim=-1)
    per_position = 0.5 * (_kl_rows(log_1, log_2) + _kl_rows(log_2, log_1))
    return _mean_over(per_position, mask if logits_1.dim() == 3 else None)


def hidden_distance(h_1: torch.Tensor, h_2: torch.Tensor, mask: torch.Tensor | None,
                    kind: str = "mse") -> torch.Tensor:
    """Distance of two (B, T, C) hidden states, averaged over real tokens.

    ``mse`` averages the squared difference over features; ``cosine`` is 1 - cosine similarity.
    """
    h_1, h_2 = h_1.float(), h_2.float()
    if kind == "mse":
        per_token = (h_1 - h_2).pow(2).mean(-1)
    else:
        # 1 - cos(a, b) = 1/2 |a/|a| - b/|b||^2, written so identical states give exactly 0.
        unit_1, unit_2 = F.normalize(h_1, dim=-1), F.normalize(h_2, dim=-1)
        per_token = 0.5 * (unit_1 - unit_2).pow(2).sum(-1)
    return _mean_over(per_token, mask)


def attention_distance(a_1: torch.Tensor, a_2: torch.Tensor, mask: torch.Tensor | None,
                       kind: str = "mse") -> torch.Tensor:
    """Distance of two (B, heads, T, T) attention maps, per query row, over heads and rows.

    ``mse`` sums the squared difference over keys; ``kl`` is the symmetric KL of the rows. Keys
    that no query may see (pads, future tokens) are 0 in both maps and add nothing; rows of pad
    queries are left out through ``mask`` (B, T).
    """
    a_1, a_2 = a_1.float(), a_2.float()
    if kind == "mse":
        per_row = (a_1 - a_2).pow(2).sum(-1)  # (B, heads, T)
    else:
        # Keys no query may see have probability exactly 0 in both maps: the floor makes their
        # logs equal and finite, so they add exactly 0 and no NaN reaches the gradient.
        log_1, log_2 = a_1.clamp_min(1e-30).log(), a_2.clamp_min(1e-30).log()
        per_row = 0.5 * (_kl_rows(log_1, log_2) + _kl_rows(log_2, log_1))
    rows = None if mask is None else mask[:, None, :].expand_as(per_row)
    return _mean_over(per_row, rows)


def _selected(n_layers: int, layers: tuple[int, ...] | None) -> list[int]:
    """The model's layer numbers that ``layers`` names (all when None)."""
    if layers is None:
        return list(range(n_layers))
    chosen = sorted({i % n_layers for i in layers if -n_layers <= i < n_layers})
    if len(chosen) != len(set(layers)):
        raise ValueError(f"layers {list(layers)} name layers outside 0..{n_layers - 1}")
    return chosen


def _layer_pairs(out_1: ModelOutput, out_2: ModelOutput, per_layer: str,
                 layers: tuple[int, ...] | None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The two samples' tensors of each selected layer that ran in both (by the model's own
    layer numbers, so that layers skipped by LayerDrop shift nothing)."""
    first = dict(zip(out_1.layer_ids, getattr(out_1, per_layer), strict=True))
    second = dict(zip(out_2.layer_ids, getattr(out_2, per_layer), strict=True))
    return [(first[i], second[i]) for i in _selected(out_1.n_layers, layers)
            if i in first and i in second]


def terms(out_1: ModelOutput, out_2: ModelOutput, batch: Batch, weights: Weights
          ) -> dict[str, torch.Tensor]:
    """The unweighted consistency terms of two samples of one (non-duplicated) batch."""
    found: dict[str, torch.Tensor] = {}
    zero = torch.zeros((), device=out_1.logits.device)
    if weights.alpha:
        found["kl"] = symmetric_kl(out_1.logits, out_2.logits, batch.mask)
    if weights.beta:
        found["hidden"] = sum(
            (hidden_distance(h_1, h_2, batch.mask, weights.hidden_distance)
             for h_1, h_2 in _layer_pairs(out_1, out_2, "hidden_states", weights.layers)), zero)
    if weights.gamma:
        found["attention"] = sum(
            (attention_distance(a_1, a_2, batch.mask, weights.attention_distance)
             for a_1, a_2 in _layer_pairs(out_1, out_2, "attentions", weights.layers)), zero)
    return found


def combine(ce: torch.Tensor, found: dict[str, torch.Tensor], weights: Weights) -> LossResult:
    """Total loss ``2 ce + alpha kl + beta hidden + gamma attention`` (``ce`` the mean of the two
    cross-entropies, doubled for the papers' sum unless ``weights.ce`` is ``mean``), with each term
    to log."""
    scale = {"kl": weights.alpha, "hidden": weights.beta, "attention": weights.gamma}
    ce_weight = 2.0 if weights.ce == "sum" else 1.0
    loss = ce_weight * ce + sum((scale[name] * value for name, value in found.items()),
                                torch.zeros((), device=ce.device))
    return LossResult(loss, {"ce": ce, **found})


def split_output(out: ModelOutput) -> tuple[ModelOutput, ModelOutput]:
    """The two samples of an output computed on a duplicated batch (loss left unset)."""
    parts = []
    for half in (0, 1):
        parts.append(ModelOutput(
            logits=halves(out.logits)[half],
            hidden_states=[halves(h)[half] for h in out.hidden_states],
            attentions=[halves(a)[half] for a in out.attentions],
            layer_ids=out.layer_ids, n_layers=out.n_layers,
        ))
    return parts[0], parts[1]


def consistency_loss(model: nn.Module, batch: Batch, weights: Weights,
                     two_passes: bool = False) -> LossResult:
    """Cross-entropies of two dropout samples plus the weighted consistency terms.

    One forward pass on :func:`duplicate` ``(batch)`` by default. ``two_passes`` runs the model
    twice on ``batch`` instead (for comparison: same losses, given the same dropout masks).
    """
    need = {"need_hidden": bool(weights.beta), "need_attention": bool(weights.gamma)}
    if two_passes:
        out_1, out_2 = model(batch, **need), model(batch, **need)
        ce = 0.5 * (out_1.loss + out_2.loss)
    else:
        out = model(duplicate(batch), **need)
        # The model's mean loss over 2B equal halves is the mean of the halves' losses.
        ce = out.loss
        out_1, out_2 = split_output(out)
    return combine(ce, terms(out_1, out_2, batch, weights), weights)
