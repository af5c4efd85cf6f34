"""Concrete dropout: a dropout rate per site (or per kind) learned with the network.

Gal, Hron and Kendall, "Concrete Dropout", NeurIPS 2017. Each claimed site gets a
:class:`~framework.layers.concrete.ConcreteDropout` op whose rate p = sigmoid(theta) is a
parameter trained with the weights (it is added at ``attach``, before the optimizer is made): the
relaxed Bernoulli mask with temperature ``temperature`` makes the output differentiable in p. The
regulariser of the paper's objective (section 3) is added to whichever loss the trial computes,
through the ``extra_loss`` hook (so it composes with R-Drop, which owns the loss), and logged as
``loss/concrete_weight`` and ``loss/concrete_entropy``:

    weight term  = sum over sites of l^2 / (2 N) * ||W||^2 / (1 - p)
    entropy term = sum over sites of K / N * (p log p + (1 - p) log(1 - p))

N is the number of training points the data loss averages over, taken from the data
(``train_size`` in the dataset's ``info``: examples, or tokens for language models); K the units a
site drops per example (its last dimension); W the weight matrices of the linear layers that read
the site's output, found by tracing the first training forward pass. A site whose output no linear
layer reads directly (the GPT's residual and attention sites, an embedding site feeding a
LayerNorm) has no weight term: its rate is learned from the data term and the entropy term alone.
The weight term is an L2 penalty on W as well: with ``train.weight_decay`` on, W gets both.

The learned rates are logged at every evaluation as ``rate/<kind>.<i>`` (``per: site``, the i-th
site of that kind) or ``rate/<kind>`` (``per: kind``, one rate shared by the kind's sites).
Evaluation is the identity (inverted dropout).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING
from typing import Any
from typing import Literal

from pydantic import Field

from framework.contract import StrategyNeeds
from framework.registry import register_strategy
from framework.strategies.base import DropoutStrategy
from framework.strategies.base import RateConfig


if TYPE_CHECKING:
    import torch
    from torch import nn


class ConcreteConfig(RateConfig):
    """Learned dropout rates with a relaxed Bernoulli mask (Gal, Hron & Kendall 2017)."""

    name: Literal["concrete"] = "concrete"
    p_init: float = Field(0.1, gt=0.0, lt=1.0)
    """Every rate's value at the start of training (the paper starts at 0.1)."""
    temperature: float = Field(0.1, gt=0.0)
    """Temperature t of the relaxed Bernoulli mask (the paper's 0.1)."""
    length_scale: float = Field(1e-2, ge=0.0)
    """Prior length-scale l of the weight term, l^2 / (2N) ||W||^2 / (1 - p); 0 leaves it out."""
    per: Literal["site", "kind"] = "site"
    """One learned rate per site, or one per kind shared by its sites."""

    def needs(self) -> StrategyNeeds:
        return replace(super().needs(), replaces_op=True)


@register_strategy("concrete", config=ConcreteConfig)
class Concrete(DropoutStrategy):
    """Puts a learned-rate op on every claimed site; adds the regulariser to the loss.

    Example::

        dropout: [{name: concrete, sites: [hidden], p_init: 0.1, length_scale: 1.0e-2}]
    """

    config: ConcreteConfig

    def attach(self, model: nn.Module) -> None:
        import torch
        from torch import nn

        from framework.layers.concrete import ConcreteDropout
        from framework.layers.concrete import initial_logit

        self.n_data = self._train_size()
        start = initial_logit(self.config.p_init)
        shared: dict[str, nn.Parameter] = {}
        counts: dict[str, int] = {}
        self.ops: list[tuple[str, ConcreteDropout]] = []
        for site in self.claim_sites(model):
            index = counts[site.kind] = counts.get(site.kind, -1) + 1
            if self.config.per == "kind":
                logit = shared.setdefault(site.kind, nn.Parameter(torch.tensor(start)))
                key = f"rate/{site.kind}"
            else:
                logit, key = nn.Parameter(torch.tensor(start)), f"rate/{site.kind}.{index}"
            site.op = ConcreteDropout(logit, self.config.temperature)
            self.ops.append((key, site.op))
        self.consumers: dict[int, list[nn.Linear]] = {id(op): [] for _, op in self.ops}
        self._start_tracing(model)

    def _train_size(self) -> int:
        size = self.data_info.get("train_size")
        if not size:
            raise ValueError(f"{self.name!r} scales its regulariser by the number of training "
                             "points, and this dataset's info has no `train_size`")
        return int(size)

    def _start_tracing(self, model: nn.Module) -> None:
        """Find the linear layers that read each site's output during the first training pass.

        A forward pre-hook on every ``nn.Linear`` compares its input with the sites' latest
        outputs (the same tensor object); tracing stops once every site has run in training.
        """
        from torch import nn

        for _, op in self.ops:
            op.tracing = True
        self._handles = [module.register_forward_pre_hook(self._seen_by)
                         for module in model.modules() if isinstance(module, nn.Linear)]
        self._handles.append(model.register_forward_hook(self._end_of_pass, always_call=True))

    def _seen_by(self, linear: nn.Linear, args: tuple[Any, ...]) -> None:
        for _, op in self.ops:
            readers = self.consumers[id(op)]
            output = op.last_output if op.tracing else None
            reads = output is not None and bool(args) and args[0] is output
            if reads and linear not in readers:
                readers.append(linear)

    def _end_of_pass(self, model: nn.Module, args: Any, output: Any) -> None:
        for _, op in self.ops:
            if op.last_output is not None:
                op.tracing, op.last_output = False, None
        if not any(op.tracing for _, op in self.ops):
            for handle in self._handles:
                handle.remove()
            self._handles = []

    def extra_loss(self, model: nn.Module) -> dict[str, torch.Tensor]:
        from framework.layers.concrete import regulariser

        weight_terms, entropy_terms = [], []
        for _, op in self.ops:
            if not op.units:  # the site has not run in training yet
                continue
            weights = [linear.weight for linear in self.consumers[id(op)]]
            weight, entropy = regulariser(op.p, op.units, weights, self.config.length_scale,
                                          self.n_data)
            weight_terms.append(weight)
            entropy_terms.append(entropy)
        if not weight_terms:
            return {}
        return {"concrete_weight": sum(weight_terms[1:], weight_terms[0]),
                "concrete_entropy": sum(entropy_terms[1:], entropy_terms[0])}

    def log_values(self) -> dict[str, float]:
        return {key: float(op.p.detach()) for key, op in getattr(self, "ops", [])}
