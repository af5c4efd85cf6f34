"""A character- or token-level GPT in the nanoGPT mould (Radford et al. 2019; Karpathy's nanoGPT).

Dropout sites: ``embedding`` (after token + position embeddings), ``attention`` (inside SDPA) and
``residual`` (after each attention and MLP projection). The blocks are ``self.layers``.
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


class GPT(LayeredModel):
    def __init__(self, spec: Any, info: dict[str, Any]):
        super().__init__()
        self.spec = spec
        self.block_size = spec.block_size
        self.tok_emb = nn.Embedding(info["vocab_size"], spec.n_embd)
        self.pos_emb = nn.Embedding(spec.block_size, spec.n_embd)
        self.emb_drop = DropoutSite("embedding")
        self.layers = nn.ModuleList(
            Block(spec.n_embd, spec.n_head, spec.bias, causal=True) for _ in range(spec.n_layer)
        )
        self.ln_f = nn.LayerNorm(spec.n_embd, bias=spec.bias)
        self.lm_head = nn.Linear(spec.n_embd, info["vocab_size"], bias=False)
        init_weights(self, spec.n_layer)
        self.lm_head.weight = self.tok_emb.weight  # weight tying (Press & Wolf 2017)

    def forward(
        self, batch: Any, *, need_hidden: bool = False, need_attention: bool = False
    ) -> ModelOutput:
        idx = batch.inputs  # (B, T) token ids
        T = idx.size(1)
        if self.block_size < T:
            raise ValueError(f"sequence of {T} tokens is longer than block_size {self.block_size}")
        pos = torch.arange(T, device=idx.device)
        x = self.emb_drop(self.tok_emb(idx) + self.pos_emb(pos))
        out = ModelOutput(logits=x, n_layers=len(self.layers))
        for index, block in self.layers_to_run():
            x, probs = block(x, need_attention=need_attention)
            if need_hidden:
                out.hidden_states.append(x)
            if need_attention:
                out.attentions.append(probs)
            if need_hidden or need_attention:
                out.layer_ids.append(index)
        out.logits = self.lm_head(self.ln_f(x))  # (B, T, vocab)
        if batch.targets is not None:
            out.loss = F.cross_entropy(
                out.logits.view(-1, out.logits.size(-1)), batch.targets.view(-1)
            )
        return out

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None) -> torch.Tensor:
        """Sample ``new_tokens`` continuations of ``idx`` (B, T); used for inference speed."""
        from framework.data.base import Batch

        for _ in range(new_tokens):
            context = idx[:, -self.block_size:]
            logits = self(Batch(context)).logits[:, -1, :] / temperature
            if top_k is not None:
                kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, [-1]]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            idx = torch.cat([idx, torch.multinomial(F.softmax(logits, dim=-1), 1)], dim=1)
        return idx
