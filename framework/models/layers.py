"""Transformer building blocks shared by the GPT and the encoder: pre-LN blocks with SDPA.

Written after nanoGPT's ``model.py`` (Karpathy), with every dropout as a :class:`DropoutSite`.
"""

from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as F

from framework.models.sites import DropoutSite
from framework.models.sites import ResidualBranch


class SelfAttention(nn.Module):
    """Multi-head self-attention, causal or bidirectional.

    Fused ``scaled_dot_product_attention`` is used unless the attention probabilities are needed
    (a strategy asked for them, or replaced the attention dropout op): then the explicit path runs.
    """

    def __init__(self, n_embd: int, n_head: int, bias: bool, causal: bool):
        super().__init__()
        self.n_head = n_head
        self.causal = causal
        self.qkv = nn.Linear(n_embd, 3 * n_embd, bias=bias)
        self.proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.attn_drop = DropoutSite("attention")
        self.resid_drop = DropoutSite("residual")

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, need_attention: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        # (B, T, C) -> (B, heads, T, head size)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        probs = None
        # A compiled graph would hold SDPA's float dropout_p as a constant (a recompilation per
        # rate): there the dropout runs on explicit probabilities with the site's tensor rate on
        # the CPU (whose SDPA takes that path itself when dropout_p > 0), and SDPA runs outside
        # the graph on GPUs (keeping their fused kernels).
        compiled_dropout = (torch.compiler.is_compiling() and self.attn_drop.training
                            and self.attn_drop.active)
        if need_attention or self.attn_drop.op is not None or (compiled_dropout and not x.is_cuda):
            scores = (q @ k.transpose(-2, -1)) / math.sqrt(k.size(-1))  # (B, heads, T, T)
            scores = scores.masked_fill(~self._allowed(T, mask, x.device), float("-inf"))
            probs = F.softmax(scores, dim=-1)
            y = self.attn_drop(probs) @ v
            return self._project(y), probs
        attn_mask = None if mask is None else self._allowed(T, mask, x.device)
        is_causal = self.causal and mask is None
        if compiled_dropout:
            # Disabled here, not at import: torch.compiler.disable imports the compiler (~2 s).
            y = torch.compiler.disable(_sdpa_at_site_rate)(q, k, v, attn_mask, is_causal,
                                                            self.attn_drop)
        else:
            y = F.scaled_dot_product_attention(
                q, k, v, attn_mask=attn_mask, is_causal=is_causal,
                dropout_p=0.0 if torch.compiler.is_compiling() else self.attn_drop.sdpa_p,
            )
        return self._project(y), probs

    def _project(self, y: torch.Tensor) -> torch.Tensor:
        """(B, heads, T, head size) -> the block's residual branch (B, T, C)."""
        B, _, T, _ = y.shape
        return self.resid_drop(self.proj(y.transpose(1, 2).reshape(B, T, -1)))

    def _allowed(self, T: int, mask: torch.Tensor | None, device: torch.device) -> torch.Tensor:
        """Boolean (B or 1, 1, T, T): which keys each query may attend to."""
        allowed = torch.ones(1, 1, T, T, dtype=torch.bool, device=device)
        if self.causal:
            allowed = allowed.tril()
        if mask is not None:  # (B, T) True for real tokens
            allowed = allowed & mask[:, None, None, :].bool()
        return allowed


def _sdpa_at_site_rate(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                       attn_mask: torch.Tensor | None, is_causal: bool, site: DropoutSite
                       ) -> torch.Tensor:
    """Fused SDPA with the site's current rate (run eagerly from a compiled forward pass)."""
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal,
                                          dropout_p=site.sdpa_p)


class MLP(nn.Module):
    def __init__(self, n_embd: int, bias: bool):
        super().__init__()
        self.fc = nn.Linear(n_embd, 4 * n_embd, bias=bias)
        self.proj = nn.Linear(4 * n_embd, n_embd, bias=bias)
        self.drop = DropoutSite("residual")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    """Pre-LayerNorm transformer block: x + attn(ln(x)), then x + mlp(ln(x)).

    Each branch joins the stream through a :class:`ResidualBranch` hook (a no-op unless a
    strategy such as stochastic depth sets its rate); the hooks hold no parameters, so state
    dicts are unchanged.
    """

    def __init__(self, n_embd: int, n_head: int, bias: bool, causal: bool):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd, bias=bias)
        self.attn = SelfAttention(n_embd, n_head, bias, causal)
        self.attn_branch = ResidualBranch("attention")
        self.ln_2 = nn.LayerNorm(n_embd, bias=bias)
        self.mlp = MLP(n_embd, bias)
        self.mlp_branch = ResidualBranch("mlp")

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, need_attention: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        attended, probs = self.attn(self.ln_1(x), mask, need_attention)
        x = x + self.attn_branch(attended)
        return x + self.mlp_branch(self.mlp(self.ln_2(x))), probs


def init_weights(module: nn.Module, n_layer: int) -> None:
    """GPT-2 initialisation: N(0, 0.02), residual projections scaled by 1/sqrt(2 * n_layer)."""
    for name, param in module.named_parameters():
        if name.endswith("proj.weight"):
            nn.init.normal_(param, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))
        elif param.dim() >= 2:
            nn.init.normal_(param, mean=0.0, std=0.02)
        elif name.endswith("bias"):
            nn.init.zeros_(param)
