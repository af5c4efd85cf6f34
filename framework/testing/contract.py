"""The strategy contract, checked on real models: a strategy either is refused or acts.

For a strategy and a model, :func:`check_pair` builds the smallest study of the pair (the model's
``EXAMPLE`` sections and the strategy's default config) and validates it. A refused study must
name the strategy; an accepted one is trained for a few steps on its real data, and the strategy
must show the effect it declares (:meth:`~framework.strategies.base.StrategyConfig.needs`):

* a strategy that drops units (``masks`` per example or per batch): two training passes with the
  same weights differ, and where it drives its sites' rates, setting them to 0 gives exactly the
  evaluation-mode output;
* a strategy that drops nothing itself (``masks: none``, e.g. ``none``): training-mode output
  equals evaluation-mode output, i.e. its sites are really off;
* a strategy that owns the loss: every loss term it reports is non-zero on a random batch;
* a strategy that skips layers: the set of layers that runs changes from pass to pass;
* a strategy that keeps dropout on at evaluation (MC dropout): two evaluation passes with the
  sites on differ.

In every case one training step gives finite gradients for every parameter that took part, and
evaluation is deterministic. Third-party plugins get the same checks: the test suite runs
:func:`check_pair` over everything registered, entry points included.
"""

from __future__ import annotations

from dataclasses import dataclass
import functools
import json
from pathlib import Path
import tempfile
from typing import Any

import torch
from torch import nn

from framework import registry
from framework.config import load_spec
from framework.contract import StrategyNeeds
from framework.errors import SpecError
from framework.models.sites import find_sites
from framework.strategies.stack import StrategyStack


class ContractViolation(AssertionError):
    """A strategy accepted on a model did not do what it declares."""


COMPANION = {"name": "standard", "p": 0.1}
"""Added before a strategy that compares dropout samples or samples at evaluation: it needs one
that drops units."""

PROBE_STEPS = (5, 1, 9)
"""Steps of a 10-step run at which a dropping strategy is looked at, in order, until it drops:
mid-run first, where schedules that start or end at 0 are not; then near the start and the end,
where the schedules that are on for only part of the run (early, late dropout) are."""


@dataclass(frozen=True)
class Outcome:
    """How a pair ended: refused at validation (with the message) or checked active."""

    refused: bool
    message: str = ""


def smallest_study(strategy: str, model: str) -> dict[str, Any]:
    """The smallest study of ``strategy`` (default config) on ``model`` (its ``EXAMPLE``)."""
    example = registry.models.get(model).config.EXAMPLE
    if example is None:
        raise LookupError(f"model {model!r} declares no EXAMPLE study")
    dropout = [{"name": strategy}]
    needs = _default_needs(strategy)
    if needs.independent_samples or needs.samples_at_eval:
        dropout.insert(0, dict(COMPANION))
    return {"name": f"contract-{strategy}-{model}", **json.loads(json.dumps(example)),
            "dropout": dropout}


def check_pair(strategy: str, model: str) -> Outcome:
    """Validate the smallest study of the pair; if accepted, check the strategy is active.

    Raises:
        ContractViolation: the study was accepted and the strategy did not act as it declares,
            or it was refused without naming the strategy.
    """
    raw = smallest_study(strategy, model)
    try:
        spec = _validate(raw)
    except SpecError as error:
        if strategy not in str(error):
            raise ContractViolation(f"the refusal does not name {strategy!r}: {error}") from None
        return Outcome(refused=True, message=str(error))
    check_active(spec, target=len(spec.dropout) - 1)
    return Outcome(refused=False)


def check_active(spec: Any, target: int, seed: int = 0) -> None:
    """Check that ``spec.dropout[target]`` acts on ``spec.model`` as it declares.

    Raises:
        ContractViolation: naming what did not happen.
    """
    torch.manual_seed(seed)
    dataset = _dataset(spec.data.model_dump_json(), spec.model.model_dump_json())
    model = registry.create_model(spec.model, dataset.info)
    stack = StrategyStack.from_configs(spec.dropout)
    stack.attach(model, dataset.info)
    strategy, needs = stack.strategies[target], spec.dropout[target].needs()
    total = 10
    stack.on_step(PROBE_STEPS[0], total)
    batch = dataset.train_batch(4, torch.Generator().manual_seed(seed))
    _check_gradients(model, stack, batch)
    if strategy.owns_loss:
        _check_loss_terms(model, stack, batch, strategy.name)
    elif needs.skip_layers:
        _check_layers_vary(model, batch, strategy.name)
    elif needs.samples_at_eval:
        _check_samples_at_eval(model, batch, strategy.name)
    elif needs.masks == "none":
        if not torch.equal(_logits(model, batch, train=True), _logits(model, batch, train=False)):
            raise ContractViolation(f"{strategy.name!r} declares it drops nothing, but training "
                                    "and evaluation outputs differ")
    else:
        for step in PROBE_STEPS:
            stack.on_step(step, total)
            if not torch.equal(_logits(model, batch, train=True),
                               _logits(model, batch, train=True)):
                break
        _check_units_dropped(model, batch, strategy.name)
    model.eval()
    inference = stack.for_inference(model)
    if not torch.equal(_logits(inference, batch, train=False),
                       _logits(inference, batch, train=False)):
        raise ContractViolation(f"{strategy.name!r}: evaluation is not deterministic")
    values = stack.log_values()
    if not all(isinstance(v, float) for v in values.values()):
        raise ContractViolation(f"{strategy.name!r}: log_values must be floats, got {values}")


def _validate(raw: dict[str, Any]) -> Any:
    """The spec, validated as ``dropout-lab validate`` does it (from a file)."""
    import yaml

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "study.yaml"
        path.write_text(yaml.safe_dump(raw))
        return load_spec(path).spec


@functools.cache
def _dataset(data_json: str, model_json: str) -> Any:
    # Datasets are built once per (data, model) pair: they are only read here.
    data, model = json.loads(data_json), json.loads(model_json)
    data_config = registry.datasets.get(data["name"]).config.model_validate(data)
    model_config = registry.models.get(model["name"]).config.model_validate(model)
    return registry.create_dataset(data_config, model_config)


def _default_needs(strategy: str) -> StrategyNeeds:
    config = registry.strategies.get(strategy).config()
    return config.needs() if hasattr(config, "needs") else StrategyNeeds()


def _logits(model: nn.Module, batch: Any, train: bool) -> torch.Tensor:
    reset = getattr(model, "reset_state", None)
    if reset is not None:  # a carried recurrent state would make passes differ by itself
        reset()
    model.train(train)
    with torch.no_grad():
        return model(batch).logits


def _check_units_dropped(model: nn.Module, batch: Any, name: str) -> None:
    if torch.equal(_logits(model, batch, train=True), _logits(model, batch, train=True)):
        raise ContractViolation(f"{name!r} is accepted on this model but two training passes "
                                "with the same weights give identical outputs: it drops nothing")
    driven = [s for s in find_sites(model) if s.owner == name and s.op is None and s.p > 0]
    if driven:
        for site in driven:
            site.p = 0.0
        if not torch.equal(_logits(model, batch, train=True), _logits(model, batch, train=False)):
            raise ContractViolation(f"{name!r}: at rate 0 its sites still change the training "
                                    "output")


def _check_samples_at_eval(model: nn.Module, batch: Any, name: str) -> None:
    from framework.training.mc import dropout_at_eval

    with dropout_at_eval(model), torch.no_grad():
        first, second = model(batch).logits, model(batch).logits
    if torch.equal(first, second):
        raise ContractViolation(f"{name!r} samples at evaluation, but two evaluation passes "
                                "with the trial's dropout on give identical outputs")


def _check_loss_terms(model: nn.Module, stack: StrategyStack, batch: Any, name: str) -> None:
    terms = stack.compute_loss(model.train(), batch).terms
    if not terms:
        raise ContractViolation(f"{name!r} owns the loss but reports no loss terms")
    zero = sorted(term for term, value in terms.items() if float(value.detach()) == 0.0)
    if zero:
        raise ContractViolation(f"{name!r}: loss terms {zero} are exactly 0 on a random batch")


def _layers_run(model: nn.Module, batch: Any) -> tuple[int, ...]:
    ran: list[int] = []
    handles = [layer.register_forward_pre_hook(lambda *_, i=i: ran.append(i))
               for i, layer in enumerate(model.layers._modules.values())]
    try:
        _logits(model, batch, train=True)
    finally:
        for handle in handles:
            handle.remove()
    return tuple(ran)


def _check_layers_vary(model: nn.Module, batch: Any, name: str) -> None:
    patterns = {_layers_run(model, batch) for _ in range(40)}
    if len(patterns) < 2:
        raise ContractViolation(f"{name!r} skips layers, but the same layers {patterns} ran in "
                                "40 training passes")


def _check_gradients(model: nn.Module, stack: StrategyStack, batch: Any) -> None:
    """One backward pass: finite gradients on every parameter of the layers that ran."""
    layers = getattr(model, "layers", None)
    skipped: set[int] = set()
    loss = stack.compute_loss(model.train(), batch).loss
    if layers is not None and hasattr(layers, "last_kept"):
        skipped = {id(p) for i, layer in enumerate(layers._modules.values())
                   if i not in layers.last_kept for p in layer.parameters()}
    loss.backward()
    if not torch.isfinite(loss):
        raise ContractViolation(f"the loss is not finite: {loss.item()}")
    missing = [n for n, p in model.named_parameters()
               if p.requires_grad and id(p) not in skipped
               and (p.grad is None or not torch.isfinite(p.grad).all())]
    if missing:
        raise ContractViolation(f"no finite gradient for {missing[:5]} after one step")
    model.zero_grad(set_to_none=True)
