"""What a dropout strategy is: a validated config plus a few optional hooks.

A strategy implements only the hooks it needs, and declares what it needs from the model
(:meth:`StrategyConfig.needs`, checked at validation; see :mod:`framework.contract`):

=====================  ==========================================================================
hook                   used by
=====================  ==========================================================================
``attach(model)``      every strategy: take over dropout sites (by kind) or wrap the layer stack
``on_step``            schedules whose rate changes with the step (linear, exponential, curriculum)
``on_eval``            schedules driven by validation metrics
``compute_loss``       strategies that need several forward passes (R-Drop, LR-Drop)
``extra_loss``         regularisers added to whichever loss is computed (Concrete dropout)
``set_rate``           a strategy's own rates (``rates``), which a schedule may drive
``for_inference``      strategies that change the model for inference (LayerDrop pruning)
``after_training``     strategies that evaluate or export the trained model (depth sweeps)
``log_values``         anything worth plotting over steps (current rates, keep probabilities)
=====================  ==========================================================================

This module must not import torch: plugin schemas are loaded by ``dropout-lab validate``.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any
from typing import ClassVar
from typing import Literal
from typing import get_args

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field

from framework.contract import StrategyNeeds


if TYPE_CHECKING:
    from collections.abc import Callable
    from collections.abc import Iterable

    import torch


SiteKind = Literal["embedding", "attention", "residual", "hidden", "recurrent", "output"]
SITE_KINDS: tuple[str, ...] = get_args(SiteKind)


class StrategyConfig(BaseModel):
    """Base of every strategy's config: frozen, unknown keys rejected, fields documented."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, use_attribute_docstrings=True, validate_default=True
    )

    name: str
    METRICS: ClassVar[tuple[str, ...]] = ()
    """Extra final metrics the strategy reports, which study objectives may name."""

    def claimed_kinds(self) -> frozenset[str]:
        """Site kinds this strategy takes over; two strategies in one trial may not share one."""
        return frozenset()

    def needs(self) -> StrategyNeeds:
        """What the strategy needs from the model and the trial's other strategies.

        Checked when the study is validated (:func:`framework.contract.check_stack`). The default
        asks for the site kinds it claims: at least one of them, or each of them when the user
        listed ``sites`` explicitly. Override it to declare more (see
        :class:`~framework.contract.StrategyNeeds`).
        """
        return StrategyNeeds(site_kinds=self.claimed_kinds(),
                             every_site_kind="sites" in self.model_fields_set)


class RateConfig(StrategyConfig):
    """Config of a strategy that sets the dropout rate of the sites it targets."""

    sites: list[SiteKind] = Field(default_factory=lambda: list(SITE_KINDS), min_length=1)
    """Kinds of dropout site this strategy controls (their rate starts at 0, then the strategy
    sets it); the model's other sites keep the model's own rate: 0 in the reference models, the
    module's configured rate in an adapted one (e.g. a Hugging Face model's dropout)."""

    def claimed_kinds(self) -> frozenset[str]:
        return frozenset(self.sites)

    def needs(self) -> StrategyNeeds:
        return replace(super().needs(), masks="per_example")


@dataclass
class LossResult:
    """A training loss owned by a strategy, with its terms to log separately."""

    loss: torch.Tensor
    terms: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class TrainedModel:
    """What ``after_training`` receives: the best model and ways to score and record it."""

    model: torch.nn.Module
    evaluate: Callable[[torch.nn.Module], dict[str, float]]
    """Scores a model (this one, or a transformed copy) on the validation batches."""
    artifact_dir: Path
    """Files written here are logged to the trial's MLflow run as artifacts."""
    history: list[dict[str, float]] = field(default_factory=list)
    """Every evaluation of the run: ``step``, losses, learning rate, logged strategy values."""
    eval_batches: Callable[[str], Iterable[Any]] | None = None
    """The fixed batches of a split, on the model's device, as evaluation reads them."""
    splits: tuple[str, ...] = ("val",)
    """The splits to score after training: ``val`` and the dataset's final splits (``test``)."""


class DropoutStrategy:
    """Base class of dropout strategies; override only the hooks you need."""

    Config: ClassVar[type[StrategyConfig]]

    def __init__(self, config: StrategyConfig):
        self.config = config
        self.data_info: dict[str, Any] = {}
        """Facts about the training data (the dataset's ``info``, e.g. ``train_size``), set by
        the trial before :meth:`attach`."""

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def owns_loss(self) -> bool:
        return type(self).compute_loss is not DropoutStrategy.compute_loss

    def attach(self, model: torch.nn.Module) -> None:
        """Take over the model's dropout sites or layers; called once, before the optimizer."""

    def claim_sites(self, model: torch.nn.Module) -> list[Any]:
        """Take the model's dropout sites of the kinds in ``config.sites`` for this strategy.

        Raises ``StrategyConflict`` if another strategy of the trial already holds one.
        """
        from framework.models.sites import claim_sites

        return claim_sites(model, self.config.claimed_kinds(), owner=self.name)

    def on_step(self, step: int, total_steps: int) -> None:
        """Called before every training step."""

    def on_eval(self, step: int, metrics: dict[str, float]) -> None:
        """Called after every evaluation with its metrics (``val_loss``, ...)."""

    def compute_loss(self, model: torch.nn.Module, batch: Any) -> LossResult:
        """Own the training loss (at most one strategy per trial may implement this)."""
        raise NotImplementedError

    def extra_loss(self, model: torch.nn.Module) -> dict[str, torch.Tensor]:
        """Terms added to the training loss, whichever strategy computes it.

        Called after every training forward pass; each term is added to the loss and logged as
        ``loss/<name>``. Any number of strategies may add terms (a regulariser on the strategy's
        own parameters composes with R-Drop, which owns the loss).
        """
        return {}

    def rates(self) -> dict[str, float]:
        """The strategy's own named rates and their current values, e.g. ``{"p": 0.1}``.

        A schedule of the trial may drive one of them (``drives: <strategy>.<rate>``); the names
        must match the config's declared ``needs().rates``, which validation checks.
        """
        return {}

    def set_rate(self, name: str, value: float) -> None:
        """Set the rate ``name`` (one of :meth:`rates`); may be called before :meth:`attach`.

        Raises:
            KeyError: for a rate the strategy does not have.
        """
        raise KeyError(f"{self.name!r} has no rate {name!r} a schedule may set "
                       f"(it has: {', '.join(self.rates()) or 'none'})")

    def for_inference(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model to use for inference; the default is the trained model as it is."""
        return model

    def after_training(self, trained: TrainedModel) -> dict[str, float]:
        """Evaluate or export the trained model; returns final metrics to log."""
        return {}

    def log_values(self) -> dict[str, float]:
        """Values to log at every evaluation, e.g. ``{"rate/attention": 0.1}``."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """State to checkpoint, so that a resumed trial continues where it stopped."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""


class DrivenRateStrategy(DropoutStrategy):
    """A strategy with one rate of its own, ``p``, that a schedule may drive (LayerDrop's and
    stochastic depth's layer rate): :meth:`rate_changed` passes a new value on to the model."""

    p: float

    def rates(self) -> dict[str, float]:
        return {"p": self.p}

    def set_rate(self, name: str, value: float) -> None:
        if name != "p":
            super().set_rate(name, value)
        self.p = float(value)
        self.rate_changed()

    def rate_changed(self) -> None:
        """Called after a schedule set ``p`` (also before :meth:`attach`)."""


class RateStrategy(DropoutStrategy):
    """A strategy that sets the rate of the dropout sites of the kinds it targets.

    Subclasses say what the rate is (:meth:`rate`); the sites apply it, and skip the dropout op
    entirely while it is 0 (SDPA then gets ``dropout_p=0``).
    """

    config: RateConfig

    def attach(self, model: torch.nn.Module) -> None:
        self.sites = self.claim_sites(model)
        self.kinds = sorted({site.kind for site in self.sites})
        self._set(self.rate(0, 1))

    def rate(self, step: int, total_steps: int) -> float:
        """The dropout rate at ``step`` of ``total_steps``."""
        raise NotImplementedError

    def on_step(self, step: int, total_steps: int) -> None:
        self._set(self.rate(step, total_steps))

    def _set(self, p: float) -> None:
        self.current = float(p)
        for site in self.sites:
            site.p = self.current

    def log_values(self) -> dict[str, float]:
        return {f"rate/{kind}": self.current for kind in self.kinds}
