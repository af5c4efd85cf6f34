"""The study spec as a whole, with its plugin sections built from the registries.

``model``, ``data`` and each ``dropout`` entry are tagged unions over what is registered, so every
entry is validated by its own plugin's schema and an error names exactly which field of which
plugin is wrong. The class is rebuilt when the registries change (a plugin file was loaded).
"""

from __future__ import annotations

from functools import cache
import re
from typing import Annotated
from typing import Any
from typing import Union

from pydantic import Field
from pydantic import create_model
from pydantic import model_validator

from framework import registry
from framework.config.arms import Arms
from framework.config.arms import ConfirmSpec
from framework.config.base import Section
from framework.config.claims import Claim
from framework.config.claims import claim_target_problem
from framework.config.errors import KeyedValueError
from framework.config.sections import SearchSpec
from framework.config.sections import TrainSpec
from framework.contract import ModelCapabilities
from framework.contract import StrategyNeeds
from framework.contract import check_stack


BASE_METRICS = (
    "val_loss", "train_loss", "final_val_loss", "best_step", "train_time",
    "train_tokens_per_sec", "inference_tokens_per_sec",
)
"""Final metrics every trial reports (``val_*`` at the best checkpoint, ``final_val_*`` at the
last evaluation; ``final_`` of each of the dataset's ``val_*`` metrics too)."""
TARGET_METRIC = "steps_to_val_loss"
"""Reported when the study sets ``train.target_val_loss``."""


class StudySpec(Section):
    """A study: one model on one dataset, trained with a list of dropout strategies, searched."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$", max_length=200)
    """Names the Optuna study and the MLflow experiment; running it again continues it."""
    seed: int = 0
    """Seeds python, numpy and torch for every trial (search it to compare over seeds)."""
    description: str = ""
    plugins: list[str] = Field(default_factory=list)
    """Plugin files or folders to load, relative to this file."""
    model: Any
    data: Any
    train: TrainSpec = Field(default_factory=TrainSpec)
    dropout: list[Any] = Field(default_factory=list)
    """Strategies composed in every trial, applied in order; empty means no dropout."""
    search: SearchSpec = Field(default_factory=SearchSpec)
    confirm: ConfirmSpec = Field(default_factory=ConfirmSpec)
    """``dropout-lab confirm``: the best configurations re-trained over fresh seeds."""
    arms: Arms = Field(default_factory=dict)
    """Arms compared with each other, each its own Optuna study ``<name>.<arm>``."""
    claims: list[Claim] = Field(default_factory=list)
    """What the study sets out to show; ``confirm`` prints one computed verdict per claim."""

    @model_validator(mode="after")
    def _check_composition(self) -> StudySpec:
        claimed: dict[str, int] = {}
        loss_owners = []
        for i, strategy in enumerate(self.dropout):
            for kind in sorted(strategy.claimed_kinds()):
                if kind in claimed:
                    raise KeyedValueError(
                        f"dropout[{i}].sites",
                        f"dropout[{claimed[kind]}] and dropout[{i}] both target {kind!r} sites; "
                        "give each strategy a disjoint `sites` list",
                    )
                claimed[kind] = i
        for i, strategy in enumerate(self.dropout):
            cls = registry.strategies.get(strategy.name).load()
            if _owns_loss(cls):
                loss_owners.append(f"dropout[{i}] ({strategy.name})")
        if len(loss_owners) > 1:
            raise KeyedValueError(
                "dropout",
                f"{' and '.join(loss_owners)} both compute the training loss; keep only one",
            )
        problems = check_stack(self.model.name, model_capabilities(self.model),
                               [(s.name, strategy_needs(s)) for s in self.dropout])
        if problems:
            raise KeyedValueError(*problems[0])
        known = self.known_metrics()
        named = [(f"search.objectives[{i}].metric", "objective", o.metric)
                 for i, o in enumerate(self.search.objectives)]
        named += [(f"confirm.metrics[{i}].metric", "confirmation", o.metric)
                  for i, o in enumerate(self.confirm.metrics)]
        for key, role, metric in named:
            if metric not in known:
                raise KeyedValueError(key, _unknown_metric(role, metric, known))
        objectives = {o.metric for o in self.search.objectives}
        for i, extra in enumerate(self.confirm.metrics):
            if extra.metric in objectives:
                raise KeyedValueError(f"confirm.metrics[{i}].metric",
                                      f"{extra.metric!r} is an objective: the table has it")
        self._check_choosers_see_no_test()
        self._check_claims(known)
        return self

    def _check_choosers_see_no_test(self) -> None:
        """What chooses (the objectives, and so the sampler and the pruner; a strategy that
        follows a metric) may not read the test split: the number reported would then be
        biased by the choice made on it."""
        choosers = [(f"search.objectives[{i}].metric", o.metric)
                    for i, o in enumerate(self.search.objectives)]
        for i, strategy in enumerate(self.dropout):
            choosers += [(f"dropout[{i}].{field}", value)
                         for field, value in strategy if "metric" in field
                         and isinstance(value, str)]
        for key, metric in choosers:
            if is_test_metric(metric):
                raise KeyedValueError(key, f"{metric!r} is scored on the test split, which "
                                      "nothing that chooses may see; use its val_* "
                                      "counterpart (claims and confirm.metrics may name "
                                      "test metrics)")

    def _check_claims(self, known: set[str]) -> None:
        arms = list(self.arms)
        ids: set[str] = set()
        for i, claim in enumerate(self.claims):
            if claim.id in ids:
                raise KeyedValueError(f"claims[{i}].id", f"claim id {claim.id!r} is used twice")
            ids.add(claim.id)
            for field in ("candidate", "baseline"):
                problem = claim_target_problem(getattr(claim, field), arms, self.confirm.top,
                                               has_baseline=not arms)
                if problem:
                    raise KeyedValueError(f"claims[{i}].{field}", problem)
            if claim.metric not in known:
                raise KeyedValueError(f"claims[{i}].metric",
                                      _unknown_metric("claim", claim.metric, known))
            if is_chosen_on(claim.metric):
                raise KeyedValueError(f"claims[{i}].metric", f"{claim.metric!r} is measured on "
                                      "the validation split, which the search and the best "
                                      "checkpoint were chosen on; judge the claim on the test "
                                      "split (e.g. " + _test_counterpart(claim.metric) + ")")

    def known_metrics(self) -> set[str]:
        data_metrics = set(getattr(self.data, "METRICS", ()))
        metrics = set(BASE_METRICS) | data_metrics
        metrics |= {f"final_{m}" for m in data_metrics if m.startswith("val_")}
        # Every dataset has a test split, scored once after a confirmation's training.
        test = {"test_loss"} | {f"test_{m[4:]}" for m in data_metrics if m.startswith("val_")}
        # ``final_test_*``: the same, on the weights at the end of training.
        metrics |= test | {f"final_{m}" for m in test}
        if not self.train.measure_inference:
            metrics.discard("inference_tokens_per_sec")
        if self.train.target_val_loss is not None:
            metrics.add(TARGET_METRIC)
        for strategy in self.dropout:
            metrics |= set(strategy.METRICS)
        return metrics


def is_test_metric(metric: str) -> bool:
    """Whether ``metric`` is scored on the test split (``test_error``, ``mc_test_nll``)."""
    return re.search(r"(^|_)test_", metric) is not None


def is_chosen_on(metric: str) -> bool:
    """Whether ``metric`` is measured on the validation split (``val_loss``,
    ``final_val_accuracy``, ``steps_to_val_loss``, ``val_loss_half_depth``)."""
    return re.search(r"(^|_)val(_|$)", metric) is not None


def _test_counterpart(metric: str) -> str:
    counterpart = re.sub(r"(^|_)val_", r"\1test_", metric, count=1)
    return counterpart if counterpart != metric else "test_loss"


def _unknown_metric(role: str, metric: str, known: set[str]) -> str:
    if metric == TARGET_METRIC:
        return f"{metric!r} needs a target: set train.target_val_loss (e.g. 1.9)"
    return (f"{role} metric {metric!r} is not reported by this study; "
            f"known: {', '.join(sorted(known))}")


def model_capabilities(model: Any) -> ModelCapabilities | None:
    """What a model spec declares it offers (None when it declares nothing)."""
    # A third-party model spec need not derive from ModelSpec: then it declares nothing.
    declared = getattr(model, "capabilities", None)
    return declared() if declared is not None else None


def strategy_needs(strategy: Any) -> StrategyNeeds:
    """What a strategy's config declares it needs; a third-party config that declares nothing
    needs the site kinds it claims."""
    declared = getattr(strategy, "needs", None)
    return declared() if declared is not None else StrategyNeeds(
        site_kinds=frozenset(strategy.claimed_kinds()))


def _owns_loss(cls: type) -> bool:
    from framework.strategies.base import DropoutStrategy

    return cls.compute_loss is not DropoutStrategy.compute_loss


def _union(reg: registry.Registry) -> Any:
    configs = reg.configs()
    if not configs:
        raise RuntimeError(f"no {reg.kind} is registered")
    if len(configs) == 1:
        return configs[0]
    return Annotated[Union[tuple(configs)], Field(discriminator="name")]  # noqa: UP007


@cache
def _build(names: tuple[tuple[str, ...], ...]) -> type[StudySpec]:
    return create_model(
        "StudySpec",
        __base__=StudySpec,
        model=(_union(registry.models), ...),
        data=(_union(registry.datasets), ...),
        dropout=(list[_union(registry.strategies)], Field(default_factory=list)),
    )


def study_model() -> type[StudySpec]:
    """The StudySpec class for what is registered now."""
    registry.discover()
    kinds = (registry.models, registry.datasets, registry.strategies)
    return _build(tuple(tuple(r.names()) for r in kinds))
