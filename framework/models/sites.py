"""Dropout sites: the named places in a model where a strategy may drop units.

Every reference model puts a :class:`DropoutSite` wherever dropout can happen and tags it with a
kind (``embedding``, ``attention``, ``residual``, ``hidden``, ``recurrent``, ``output``). A site
starts at rate 0; strategies claim sites by kind and then set the rate (``site.p``) or replace the
operation (``site.op``, a module that sees the site's context, e.g. the pre-activation).

Attention dropout inside fused SDPA is a float argument, not a module: the attention layer reads
``site.sdpa_p`` and passes it as ``dropout_p``, so schedules reach it like any other site.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
import torch.nn.functional as F


class StrategyConflict(RuntimeError):
    """Two strategies in one trial claimed the same dropout site."""


class DropoutSite(nn.Module):
    """A place where dropout may happen; rate 0 (the default) costs nothing."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind
        self.p = 0.0
        self.owner: str | None = None
        self.op: nn.Module | None = None

    def forward(self, x: torch.Tensor, **context: torch.Tensor) -> torch.Tensor:
        if self.op is not None:
            return self.op(x, **context)
        # Skipping the op at p == 0 is what lets a schedule that decays to 0 train faster.
        if self.p == 0.0 or not self.training:
            return x
        return F.dropout(x, self.p, training=True)

    @property
    def sdpa_p(self) -> float:
        """The ``dropout_p`` to give fused attention (0 outside training)."""
        return self.p if self.training else 0.0

    def extra_repr(self) -> str:
        owner = f", owner={self.owner}" if self.owner else ""
        return f"kind={self.kind}, p={self.p}{owner}"


def find_sites(model: nn.Module, kinds: Iterable[str] | None = None) -> list[DropoutSite]:
    """The model's dropout sites, in module order, optionally only those of ``kinds``."""
    wanted = set(kinds) if kinds is not None else None
    return [
        m for m in model.modules()
        if isinstance(m, DropoutSite) and (wanted is None or m.kind in wanted)
    ]


def claim_sites(model: nn.Module, kinds: Iterable[str], owner: str) -> list[DropoutSite]:
    """Hand the sites of ``kinds`` to ``owner``; kinds the model lacks are ignored.

    Raises:
        StrategyConflict: when a site already belongs to another strategy.
    """
    sites = find_sites(model, kinds)
    for site in sites:
        if site.owner not in (None, owner):
            raise StrategyConflict(
                f"{owner!r} and {site.owner!r} both claim the {site.kind!r} dropout sites"
            )
        site.owner = owner
    return sites
