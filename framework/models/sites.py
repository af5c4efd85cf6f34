"""Dropout sites: the named places in a model where a strategy may drop units.

Every reference model puts a :class:`DropoutSite` wherever dropout can happen and tags it with a
kind (``embedding``, ``attention``, ``residual``, ``hidden``, ``recurrent``, ``output``). A site
starts at its original rate (0 in the reference models; the model's own rate in an adapted one,
see :mod:`framework.models.adapter`); strategies claim sites by kind, which sets the rate to 0, and
then set the rate (``site.p``) or replace the operation (``site.op``, a module that sees the site's
context, e.g. the pre-activation). Sites no strategy claims keep their original rate.

Attention dropout inside fused SDPA is a float argument, not a module: the attention layer reads
``site.sdpa_p`` and passes it as ``dropout_p``, so schedules reach it like any other site.

Under ``torch.compile`` (``train.compile``) a site reads its rate from a tensor (``site.rate``),
an input of the graph, so changing the rate does not recompile it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn
import torch.nn.functional as F


class StrategyConflict(RuntimeError):
    """Two strategies in one trial claimed the same dropout site."""


class StrategyIncompatible(RuntimeError):
    """A strategy found nothing to act on in the model (a model that declares no capabilities
    is checked only here, when the strategy attaches)."""


class RatedModule(nn.Module):
    """A module with a drop rate ``p`` that strategies set: dropout sites and residual branches.

    The rate is also held in a 0-d tensor (``rate``): a compiled graph reads it as an input, so a
    schedule that changes it every step does not recompile the graph (a float would be its
    constant). Only whether it is 0 (``active``) specialises a graph: at most two graphs.
    """

    def __init__(self, kind: str, p: float = 0.0):
        super().__init__()
        self.register_buffer("rate", torch.zeros(()), persistent=False)
        self.kind = kind
        self.p = float(p)
        self.owner: str | None = None

    @property
    def p(self) -> float:
        """The drop rate; setting it also sets :attr:`rate` and :attr:`active`."""
        return self._p

    @p.setter
    def p(self, value: float) -> None:
        self._p = float(value)
        self.active = self._p > 0.0
        self.rate.fill_(self._p)


class DropoutSite(RatedModule):
    """A place where dropout may happen; rate 0 (the default) costs nothing."""

    def __init__(self, kind: str, p: float = 0.0):
        super().__init__(kind, p)
        self.original_p = float(p)
        """The rate the site was built with, kept while no strategy claims it."""
        self.op: nn.Module | None = None

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Sites pickled before the rate became a property hold it as a plain attribute.
        legacy = state.pop("p", None)
        super().__setstate__(state)
        if legacy is not None:
            self._buffers.setdefault("rate", torch.zeros(()))
            self._non_persistent_buffers_set.add("rate")
            self.p = legacy

    def forward(self, x: torch.Tensor, **context: torch.Tensor) -> torch.Tensor:
        if self.op is not None:
            return self.op(x, **context)
        # Skipping the op at p == 0 is what lets a schedule that decays to 0 train faster.
        if not (self.active and self.training):
            return x
        if torch.compiler.is_compiling():
            return dropout(x, self.rate)
        return F.dropout(x, self.p, training=True)

    @property
    def sdpa_p(self) -> float:
        """The ``dropout_p`` to give fused attention (0 outside training)."""
        return self.p if self.training else 0.0

    def extra_repr(self) -> str:
        owner = f", owner={self.owner}" if self.owner else ""
        original = f", original_p={self.original_p}" if self.original_p != self.p else ""
        return f"kind={self.kind}, p={self.p}{original}{owner}"


def dropout(x: torch.Tensor, rate: torch.Tensor) -> torch.Tensor:
    """Inverted dropout at a rate held in a 0-d tensor (``F.dropout`` takes only a float).

    What :class:`DropoutSite` runs inside a compiled graph, where the rate is one of the graph's
    inputs. On a GPU the compiler draws the mask inside its fused kernel; on a CPU its generator
    is far slower than ATen's vectorised Bernoulli draw, which :func:`keep_mask` calls instead.
    """
    keep = torch.rand_like(x) >= rate if x.is_cuda else keep_mask(x.detach(), rate)
    return x * keep / (1.0 - rate)


@torch.library.custom_op("dropout_lab::keep_mask", mutates_args=())
def keep_mask(x: torch.Tensor, rate: torch.Tensor) -> torch.Tensor:
    """A 0/1 mask shaped as ``x`` keeping each element with probability 1 - ``rate``.

    An operator of its own, so a compiled graph calls it as it is (ATen's Bernoulli draw) with
    the rate as a graph input; reading the rate on the host is free on a CPU, where it is used.
    """
    return torch.empty_like(x).bernoulli_(1.0 - float(rate))


@keep_mask.register_fake
def _keep_mask_shape(x: torch.Tensor, rate: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(x)


def find_sites(model: nn.Module, kinds: Iterable[str] | None = None) -> list[DropoutSite]:
    """The model's dropout sites, in module order, optionally only those of ``kinds``."""
    wanted = set(kinds) if kinds is not None else None
    return [
        m for m in model.modules()
        if isinstance(m, DropoutSite) and (wanted is None or m.kind in wanted)
    ]


def claim_sites(model: nn.Module, kinds: Iterable[str], owner: str) -> list[DropoutSite]:
    """Hand the sites of ``kinds`` to ``owner``; kinds the model lacks are skipped, but at least
    one must exist.

    Raises:
        StrategyConflict: when a site already belongs to another strategy.
        StrategyIncompatible: when the model has no site of any of ``kinds``.
    """
    kinds = sorted(kinds)
    sites = find_sites(model, kinds)
    if kinds and not sites:
        present = sorted({site.kind for site in find_sites(model)})
        raise StrategyIncompatible(
            f"{owner!r} acts on {', '.join(kinds)} dropout sites and {type(model).__name__} has "
            f"none (it has: {', '.join(present) or 'no dropout sites'})")
    for site in sites:
        if site.owner not in (None, owner):
            raise StrategyConflict(
                f"{owner!r} and {site.owner!r} both claim the {site.kind!r} dropout sites"
            )
        if site.owner is None:
            site.p = 0.0  # a claimed site drops only what its strategy sets
        site.owner = owner
    return sites


class ResidualBranch(RatedModule):
    """Where a block's residual branch joins the stream: ``x + branch(x)``, the branch through this.

    Off (rate 0, the default, or outside training) it returns the branch unchanged. At rate p in
    training it drops the whole branch of each example independently and scales the kept ones by
    1/(1-p), so the expected output is unchanged (stochastic depth, Huang et al. 2016, with the
    inverted scaling of common ports instead of the paper's test-time scaling). ``kind`` says
    which branch: ``attention`` or ``mlp``.
    """

    def forward(self, branch: torch.Tensor) -> torch.Tensor:
        if not (self.active and self.training):
            return branch
        # One draw per example (dim 0), broadcast over positions and features.
        shape = (branch.shape[0],) + (1,) * (branch.dim() - 1)
        kept = torch.rand(shape, device=branch.device) >= self.rate
        return branch * kept / (1.0 - self.rate)

    def extra_repr(self) -> str:
        owner = f", owner={self.owner}" if self.owner else ""
        return f"kind={self.kind}, p={self.p}{owner}"


def find_branches(module: nn.Module) -> list[ResidualBranch]:
    """The residual-branch hooks inside ``module``, in module order."""
    return [m for m in module.modules() if isinstance(m, ResidualBranch)]
