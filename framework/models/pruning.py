"""Depth on demand: choose which layers of a stack to keep, and build or save the pruned model.

Fan, Grave and Joulin (ICLR 2020, sec. 5) prune a model trained with LayerDrop to any depth with
no fine-tuning, by keeping a subset of its layers. Layer indices here are **0-based** (as in
fairseq's ``layers_to_keep``): layer 0 is the one nearest the input.

Selectors of ``k`` of ``n`` layers:

* ``every_other``: spread the kept layers evenly, ``floor(i * n / k)`` for i = 0..k-1. At k = n/2
  this keeps layers 0, 2, 4, ...; in general it is the paper's "Every Other" rule, which prunes at
  rate r by dropping the layers at 1-based depth d with d = 0 (mod 1/r), whenever n / (n - k) is
  an integer.
* ``first`` / ``last``: the k layers nearest the input / the output.
* an explicit list of indices.
* ``search``: "Search on Valid": greedy backward elimination scored on validation data, which
  from the full stack repeatedly removes the layer whose removal raises the loss least (n(n+1)/2
  evaluations give a nested subset for every depth; the exhaustive search is C(n, k) per depth).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Collection
from collections.abc import Sequence
import copy
from pathlib import Path
import re
from typing import Any
from typing import Literal

import torch
from torch import nn

from framework.training.checkpoint import load_checkpoint_file


Selector = Literal["every_other", "first", "last", "search"]
LAYER_KEY = re.compile(r"^(?P<prefix>(?:.*\.)?layers\.)(?P<index>\d+)\.(?P<rest>.+)$")


def every_other(n: int, k: int) -> list[int]:
    """``k`` of ``n`` layers spread evenly, starting with layer 0."""
    _check_depth(n, k)
    return [i * n // k for i in range(k)]


def keep_first(n: int, k: int) -> list[int]:
    _check_depth(n, k)
    return list(range(k))


def keep_last(n: int, k: int) -> list[int]:
    _check_depth(n, k)
    return list(range(n - k, n))


def explicit(n: int, layers: Sequence[int]) -> list[int]:
    """Validate a list of 0-based layer indices; returns them sorted (the stack keeps its order).

    Raises:
        ValueError: for an empty list, a repeated index or one outside 0..n-1.
    """
    kept = sorted(int(i) for i in layers)
    if not kept:
        raise ValueError("keep at least one layer")
    if len(set(kept)) != len(kept):
        raise ValueError(f"layer indices repeat: {list(layers)}")
    if kept[0] < 0 or kept[-1] >= n:
        raise ValueError(
            f"layer indices are 0-based and must lie in 0..{n - 1}; got {list(layers)}")
    return kept


def depths(n: int, fixed: Collection[int] = ()) -> range:
    """The depths a stack of ``n`` layers can be pruned to when ``fixed`` layers must stay."""
    return range(max(1, len(fixed)), n + 1)


def select(selector: str, n: int, k: int, fixed: Collection[int] = ()) -> list[int]:
    """The ``k`` layers that a fixed ``selector`` (not ``search``) keeps of ``n``.

    Layers in ``fixed`` (whose input and output widths differ) are always kept; the selector
    chooses the rest among the other layers.
    """
    rules: dict[str, Callable[[int, int], list[int]]] = {
        "every_other": every_other, "first": keep_first, "last": keep_last}
    if selector not in rules:
        raise ValueError(f"unknown layer selector {selector!r}; use one of {sorted(rules)}")
    if not fixed:
        return rules[selector](n, k)
    if k not in depths(n, fixed):
        raise ValueError(f"cannot keep {k} of {n} layers when layers {sorted(fixed)} must "
                         f"always run; the depth must be in {len(fixed)}..{n}")
    free = [i for i in range(n) if i not in fixed]
    chosen = [free[i] for i in rules[selector](len(free), k - len(fixed))] if k > len(fixed) else []
    return sorted({*fixed, *chosen})


def search_on_valid(n: int, score: Callable[[list[int]], float],
                    min_depth: int = 1, fixed: Collection[int] = ()) -> dict[int, list[int]]:
    """Greedy backward elimination: the kept layers for every depth from ``n`` to ``min_depth``.

    Args:
        n: depth of the trained stack.
        score: validation loss of the model that keeps the given layers (lower is better).
        min_depth: the shallowest depth to reach.
        fixed: layers that are never removed.
    """
    kept = list(range(n))
    found = {n: list(kept)}
    min_depth = max(min_depth, len(fixed))
    while len(kept) > min_depth:
        candidates = [[i for i in kept if i != drop] for drop in kept if drop not in fixed]
        kept = min(candidates, key=score)
        found[len(kept)] = list(kept)
    return found


def keep_layers(model: nn.Module, layers: Sequence[int]) -> nn.Module:
    """A copy of ``model`` whose stack holds only ``layers`` (0-based), as a plain ModuleList.

    The copy is an ordinary model of depth ``len(layers)``: its state dict keys are renumbered
    ``layers.0..k-1`` and its spec (when it has an ``n_layer`` field) says the new depth.
    """
    n = len(model.layers)
    kept = explicit(n, layers)
    pruned = copy.deepcopy(model)
    stack = pruned.layers
    pruned.layers = nn.ModuleList([stack[i] for i in kept])
    pruned.layers.train(stack.training)
    spec = getattr(pruned, "spec", None)
    fields = getattr(type(spec), "model_fields", {})
    if spec is not None and "n_layer" in fields:
        pruned.spec = spec.model_copy(update={"n_layer": len(kept)})
    elif spec is not None and "keep_layers" in fields:  # an adapted model: its module's layers
        before = spec.keep_layers or list(range(n))
        pruned.spec = spec.model_copy(update={"keep_layers": [before[i] for i in kept]})
    return pruned


def prune_state_dict(state: dict[str, Any], layers: Sequence[int],
                     stack: str | None = None) -> dict[str, Any]:
    """Keep the tensors of ``layers`` only and renumber ``...layers.<i>.`` keys to 0..k-1.

    Other keys pass unchanged. Follows fairseq's ``checkpoint_utils.prune_state_dict``.

    Args:
        stack: the stack's own key prefix (an adapted model's ``net.encoder.layer``) instead of
            any ``...layers.``.
    """
    pattern = LAYER_KEY if stack is None else re.compile(
        rf"^(?P<prefix>{re.escape(stack)}\.)(?P<index>\d+)\.(?P<rest>.+)$")
    new_index = {old: new for new, old in enumerate(layers)}
    pruned: dict[str, Any] = {}
    for key, value in state.items():
        match = pattern.match(key)
        if match is None:
            pruned[key] = value
        elif int(match["index"]) in new_index:
            pruned[f"{match['prefix']}{new_index[int(match['index'])]}.{match['rest']}"] = value
    return pruned


def prune_checkpoint(source: Path, target: Path, layers: Sequence[int],
                     info: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write a smaller copy of a ``best.pt``-style checkpoint that keeps only ``layers``.

    The checkpoint is a dict with ``spec`` (the study spec, or only the model section) and
    ``model`` (the state dict). The copy sets the model's ``n_layer`` to the new depth, so it
    loads as an ordinary model of that depth; it also records ``layers_kept`` and, when given,
    ``info`` (what the model is built from, e.g. the vocabulary size).

    Raises:
        SpecError: when ``source`` is not a checkpoint that loads with ``weights_only``.
    """
    checkpoint = load_checkpoint_file(source, needs=("spec", "model"))
    spec = copy.deepcopy(checkpoint["spec"])
    stack = None
    if "n_layer" in model_spec(spec):
        n = int(model_spec(spec)["n_layer"])
        kept = explicit(n, layers)
        model_spec(spec)["n_layer"] = len(kept)
    else:  # an adapted model: its depth is its module's, its spec records the layers kept
        survey = _adapted_survey(model_spec(spec))
        n, stack = survey.n_layers, f"net.{survey.stack}"
        kept = explicit(n, layers)
        before = model_spec(spec).get("keep_layers") or list(range(n))
        model_spec(spec)["keep_layers"] = [before[i] for i in kept]
    pruned = {**checkpoint, "spec": spec,
              "model": prune_state_dict(checkpoint["model"], kept, stack), "layers_kept": kept}
    if info is not None:
        pruned["info"] = info
    torch.save(pruned, target)
    return pruned


def load_checkpoint(path: Path, info: dict[str, Any] | None = None) -> nn.Module:
    """Build the model a checkpoint describes and load its weights, for inference (eval mode).

    The trial's strategies (its spec's ``dropout``) are attached before the weights load, as in
    training: some add parameters the weights include (standout's learned gates, Concrete
    dropout's rates) or change what evaluation computes. Their inference transform
    (``for_inference``, e.g. LayerDrop's pruning to ``inference_depth``) is then applied, except
    to a checkpoint that is already a pruned copy (it records ``layers_kept``). The model is
    the one a trial logs to MLflow.

    ``info`` defaults to the checkpoint's own ``info`` (every ``best.pt`` stores it), else to the
    info of the dataset named in its study spec (older checkpoints: that needs the data).

    Raises:
        SpecError: when ``path`` is not a checkpoint that loads with ``weights_only``.
    """
    from framework import registry
    from framework.strategies.stack import StrategyStack

    checkpoint = load_checkpoint_file(path, needs=("spec", "model"))
    raw = model_spec(checkpoint["spec"])
    registry.discover()
    config = registry.models.get(raw["name"]).config.model_validate(raw)
    if info is None:
        info = checkpoint.get("info")
    if info is None:
        data = checkpoint["spec"]["data"]
        data_spec = registry.datasets.get(data["name"]).config.model_validate(data)
        info = registry.create_dataset(data_spec, config).info
    model = registry.create_model(config, info)
    spec = checkpoint["spec"]
    # A checkpoint whose spec is the model section alone has no strategies.
    dropout = (spec.get("dropout") or []) if isinstance(spec.get("model"), dict) else []
    strategies = StrategyStack.from_configs(
        [registry.strategies.get(d["name"]).config.model_validate(d) for d in dropout])
    strategies.attach(model, info)
    model.load_state_dict(checkpoint["model"])
    if "strategies" in checkpoint:
        strategies.load_state_dict(checkpoint["strategies"])
    model.eval()
    if "layers_kept" not in checkpoint:
        model = strategies.for_inference(model)
    return model.eval()


def _adapted_survey(raw: dict[str, Any]) -> Any:
    """The survey (depth, stack path) of an adapted model's spec section."""
    from framework import registry

    registry.discover()
    config = registry.models.get(raw["name"]).config.model_validate(raw)
    if not hasattr(config, "survey"):
        raise ValueError(f"model {raw['name']!r} has neither `n_layer` nor a surveyed stack: "
                         "its checkpoint cannot be pruned")
    return config.survey()


def depth_of(model: dict[str, Any]) -> int:
    """How many layers the model of a checkpoint's model section has (``n_layer``, or the
    surveyed stack of an adapted model).

    Raises:
        ValueError: a model with neither, or a section that names no registered model.
    """
    if "n_layer" in model:
        return int(model["n_layer"])
    if "name" not in model:
        raise ValueError("its spec names no model: not a dropout-lab checkpoint")
    try:
        return int(_adapted_survey(model).n_layers)
    except KeyError as error:
        raise ValueError(f"its model is not registered here: {error}") from None


def model_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The model section of a checkpoint's spec (a whole study spec, or the model section)."""
    return spec["model"] if isinstance(spec.get("model"), dict) else spec


def _check_depth(n: int, k: int) -> None:
    if not 1 <= k <= n:
        raise ValueError(f"cannot keep {k} of {n} layers; the depth must be in 1..{n}")
