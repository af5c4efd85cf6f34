"""Plain PyTorch models that know nothing of the framework, for the ``module`` adapter.

They stand for a user's own code: :class:`TinyLM` is built from torch's own layers (``nn.Dropout``
modules, and the rate attribute of ``nn.MultiheadAttention``), :class:`MiniGPT` has its own
minGPT-style attention (the ``module`` spec's ``EXAMPLE``).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class TinyLM(nn.Module):
    """A causal character LM from ``nn.TransformerEncoderLayer`` blocks (pre-LayerNorm)."""

    def __init__(self, vocab_size: int, block_size: int, n_embd: int = 32, n_head: int = 2,
                 n_layer: int = 2, p: float = 0.1):
        super().__init__()
        self.tok_emb = nn.Embedding(vocab_size, n_embd)
        self.pos_emb = nn.Embedding(block_size, n_embd)
        self.emb_drop = nn.Dropout(p)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(n_embd, n_head, 4 * n_embd, dropout=p, batch_first=True,
                                       norm_first=True) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd)
        self.head = nn.Linear(n_embd, vocab_size)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        T = idx.size(1)
        x = self.emb_drop(self.tok_emb(idx) + self.pos_emb(torch.arange(T, device=idx.device)))
        causal = nn.Transformer.generate_square_subsequent_mask(T, device=idx.device)
        for layer in self.layers:
            x = layer(x, src_mask=causal, is_causal=True)
        return self.head(self.ln_f(x))


class CausalSelfAttention(nn.Module):
    """Explicit causal attention, minGPT style: the attention matrix goes through an nn.Dropout."""

    def __init__(self, n_embd: int, n_head: int, p: float):
        super().__init__()
        self.n_head = n_head
        self.qkv = nn.Linear(n_embd, 3 * n_embd)
        self.proj = nn.Linear(n_embd, n_embd)
        self.attn_drop = nn.Dropout(p)
        self.resid_drop = nn.Dropout(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(k.size(-1))
        future = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
        probs = self.attn_drop(scores.masked_fill(future, float("-inf")).softmax(-1))
        return self.resid_drop(self.proj((probs @ v).transpose(1, 2).reshape(B, T, C)))


class Block(nn.Module):
    """Pre-LayerNorm block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, n_embd: int, n_head: int, p: float):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd)
        self.attn = CausalSelfAttention(n_embd, n_head, p)
        self.ln_2 = nn.LayerNorm(n_embd)
        self.mlp = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.GELU(),
                                 nn.Linear(4 * n_embd, n_embd), nn.Dropout(p))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class MiniGPT(nn.Module):
    """A minGPT-style character LM: its own attention module and ``blocks`` stack."""

    def __init__(self, vocab_size: int, block_size: int, n_embd: int = 32, n_head: int = 2,
                 n_layer: int = 2, p: float = 0.1):
        super().__init__()
        self.tok_emb = nn.Embedding(vocab_size, n_embd)
        self.pos_emb = nn.Embedding(block_size, n_embd)
        self.emb_drop = nn.Dropout(p)
        self.blocks = nn.ModuleList(Block(n_embd, n_head, p) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd)
        self.head = nn.Linear(n_embd, vocab_size)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.emb_drop(self.tok_emb(idx) + self.pos_emb(torch.arange(idx.size(1),
                                                                        device=idx.device)))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))
