"""A Transformer encoder classifier trained from scratch (BERT-style bidirectional attention).

Devlin et al., "BERT: Pre-training of Deep Bidirectional Transformers for Language
Understanding", NAACL 2019, for the encoder and its [CLS] head; the blocks are the GPT's pre-LN
blocks (:mod:`framework.models.layers`) with the causal mask replaced by the padding mask.

Dropout sites, as in the GPT: ``embedding`` (after token + position embeddings), ``attention``
(inside SDPA, or on the probabilities in the explicit path), ``residual`` (after each attention and
MLP projection), plus ``output`` (on the pooled vector before the classifier). The blocks are
``self.layers``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
import torch.nn.functional as F

from framework.models.base import LayeredModel
from framework.models.base import ModelOutput
from framework.models.layers import Block
from framework.models.layers import init_weights
from framework.models.sites import DropoutSite


class Encoder(LayeredModel):
    """Token + position embeddings, ``n_layer`` bidirectional blocks, pooling, a linear head."""

    def __init__(self, spec: Any, info: dict[str, Any]):
        super().__init__()
        self.spec = spec
        self.block_size = spec.block_size
        self.pooling = spec.pooling
        self.tok_emb = nn.Embedding(info["vocab_size"], spec.n_embd)
        self.pos_emb = nn.Embedding(spec.block_size, spec.n_embd)
        self.emb_drop = DropoutSite("embedding")
        self.layers = nn.ModuleList(
            Block(spec.n_embd, spec.n_head, spec.bias, causal=False) for _ in range(spec.n_layer)
        )
        self.ln_f = nn.LayerNorm(spec.n_embd, bias=spec.bias)
        self.head_drop = DropoutSite("output")
        self.head = nn.Linear(spec.n_embd, info["num_classes"], bias=True)
        init_weights(self, spec.n_layer)

    def forward(
        self, batch: Any, *, need_hidden: bool = False, need_attention: bool = False
    ) -> ModelOutput:
        idx, mask = batch.inputs, batch.mask  # (B, T) token ids; (B, T) True for real tokens
        T = idx.size(1)
        if self.block_size < T:
            raise ValueError(f"sequence of {T} tokens is longer than block_size {self.block_size}")
        x = self.emb_drop(self.tok_emb(idx) + self.pos_emb(torch.arange(T, device=idx.device)))
        out = ModelOutput(logits=x, n_layers=len(self.layers))
        for index, block in self.layers_to_run():
            x, probs = block(x, mask, need_attention=need_attention)
            if need_hidden:
                out.hidden_states.append(x)
            if need_attention:
                out.attentions.append(probs)
            if need_hidden or need_attention:
                out.layer_ids.append(index)
        x = self.ln_f(x)
        if self.pooling == "cls" or mask is None:
            pooled = x[:, 0] if self.pooling == "cls" else x.mean(1)
        else:  # mean over real tokens only
            weights = mask.to(x.dtype).unsqueeze(-1)  # (B, T, 1)
            pooled = (x * weights).sum(1) / weights.sum(1).clamp_min(1.0)
        out.logits = self.head(self.head_drop(pooled))  # (B, classes)
        if batch.targets is not None:
            out.loss = F.cross_entropy(out.logits, batch.targets)
        return out
