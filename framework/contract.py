"""The contract between strategies and models: what a model offers, what a strategy needs.

A study that names a strategy the model cannot serve must be refused when it is validated, not
train while the strategy does nothing (a research tool must never report a result for an
experiment it did not run). Each model spec says what its model offers
(:class:`ModelCapabilities`, from ``ModelSpec.capabilities()``) and each strategy config says what
it needs (:class:`StrategyNeeds`, from ``StrategyConfig.needs()``); :func:`check_stack` compares
them for the whole list of strategies of a trial. Both are derived from the validated configs
alone, so the check runs in ``dropout-lab validate`` without torch and without building a model.

A plugin that declares nothing keeps working: a strategy's default needs are the site kinds it
claims, and a model that declares no capabilities is checked only at ``attach`` time (a strategy
whose site kinds the model lacks entirely then fails the trial with the reason).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Literal


Masks = Literal["per_example", "per_batch", "none"]


@dataclass(frozen=True)
class ModelCapabilities:
    """What a model offers to strategies."""

    site_kinds: frozenset[str]
    """Kinds of :class:`~framework.models.sites.DropoutSite` the model has."""
    pre_activation_kinds: frozenset[str] = frozenset()
    """Site kinds whose sites also receive the layer's pre-activation (for standout)."""
    rate_only_kinds: frozenset[str] = frozenset()
    """Site kinds with sites that take a rate only: the model's own code reads the rate and draws
    the mask, so a strategy cannot replace their dropout operation (``site.op``)."""
    n_layers: int = 0
    """Depth of the layer stack (``model.layers``); 0: no stack."""
    fixed_layers: frozenset[int] = frozenset()
    """Layers that can never be skipped (their input and output widths differ)."""
    fixed_reason: str = ""
    """Why the fixed layers cannot be skipped, for error messages."""
    hidden_states: bool = False
    """The forward pass can return each layer's output (``need_hidden=True``)."""
    attention_maps: bool = False
    """The forward pass can return attention probabilities (``need_attention=True``)."""
    recurrent_cells: bool = False
    """The layers are :class:`~framework.models.lstm.LSTMLayer` s, whose recurrent product takes
    structured masks and DropConnect on ``W_hh``."""
    residual_branches: bool = False
    """Each residual branch of the blocks joins the stream through a
    :class:`~framework.models.sites.ResidualBranch` hook, which can drop it per example
    (stochastic depth)."""

    @property
    def skippable_layers(self) -> list[int]:
        return [i for i in range(self.n_layers) if i not in self.fixed_layers]

    def describe(self) -> dict[str, str]:
        """One line per capability, for ``dropout-lab plugins show``."""
        return {
            "dropout sites": ", ".join(sorted(self.site_kinds)) or "none",
            "sites with pre-activation": ", ".join(sorted(self.pre_activation_kinds)) or "none",
            "rate-only sites (no op replacement)": ", ".join(sorted(self.rate_only_kinds))
            or "none",
            "layer stack": (f"{self.n_layers} layers, skippable: "
                            f"{_list(self.skippable_layers)}") if self.n_layers else "none",
            "hidden states": _yes(self.hidden_states),
            "attention maps": _yes(self.attention_maps),
            "recurrent cells (structured masks, weight drop)": _yes(self.recurrent_cells),
            "residual branches (stochastic depth)": _yes(self.residual_branches),
        }


@dataclass(frozen=True)
class StrategyNeeds:
    """What a strategy needs from the model and from the other strategies of its trial."""

    site_kinds: frozenset[str] = frozenset()
    """Site kinds the strategy acts on; at least one must exist in the model."""
    every_site_kind: bool = False
    """Each of ``site_kinds`` must exist (the user listed them explicitly)."""
    pre_activation: bool = False
    """Its sites must receive the pre-activation."""
    replaces_op: bool = False
    """It replaces its sites' dropout operation (``site.op``) instead of setting their rate."""
    hidden_states: bool = False
    attention_maps: bool = False
    layers: tuple[int, ...] = ()
    """Layer indices (0-based; negative from the top) that must exist in the stack; for a
    strategy that skips layers, the layers it keeps at inference."""
    skip_layers: bool = False
    """Skips whole layers of the stack (at least one layer must be skippable)."""
    recurrent_cells: bool = False
    residual_branches: bool = False
    """Drops the residual branches of the model's blocks (:class:`ModelCapabilities`)."""
    independent_samples: bool = False
    """Compares two dropout samples of each example (a consistency loss): some other strategy
    must draw its masks per example."""
    samples_at_eval: bool = False
    """Keeps the trial's dropout on at evaluation (MC dropout): some other strategy must drop
    units or branches."""
    rates: tuple[str, ...] = ()
    """Names of the strategy's own rates that a schedule of the trial may drive
    (``drives: <strategy>.<rate>``); its ``set_rate`` accepts them."""
    drives: str = ""
    """``<strategy>.<rate>``: the other strategy's rate this schedule sets; empty when it sets
    the rates of its own dropout sites."""
    masks: Masks = "none"
    """How the strategy's own dropout draws its masks: ``per_example`` (independent for every
    example), ``per_batch`` (one mask shared by the whole batch) or ``none`` (it drops nothing)."""
    notes: tuple[str, ...] = field(default=())
    """Free-form extra requirements, shown by ``plugins show``."""

    def describe(self) -> dict[str, str]:
        """One line per declared need, for ``dropout-lab plugins show``."""
        lines = {}
        if self.site_kinds:
            lines["site kinds"] = ", ".join(sorted(self.site_kinds)) + (
                " (each must exist)" if self.every_site_kind else " (at least one must exist)")
        flags = {"pre_activation": "sites that pass the pre-activation",
                 "replaces_op": "sites whose dropout operation can be replaced",
                 "hidden_states": "per-layer hidden states", "attention_maps": "attention maps",
                 "skip_layers": "a layer stack whose layers can be skipped",
                 "recurrent_cells": "LSTM layers (framework.models.lstm.LSTMLayer)",
                 "residual_branches": "blocks whose residual branches can be dropped",
                 "independent_samples": "another strategy that drops units per example",
                 "samples_at_eval": "another strategy that drops units or branches"}
        needed = [text for name, text in flags.items() if getattr(self, name)]
        if self.layers:
            needed.append(f"layers {list(self.layers)}")
        if self.drives:
            needed.append(f"a strategy whose rate {self.drives} it drives")
        lines["needs"] = "; ".join([*needed, *self.notes]) or "nothing more"
        if self.rates:
            lines["rates a schedule may drive"] = ", ".join(self.rates)
        lines["masks"] = {"per_example": "drawn per example", "per_batch": "one per batch",
                          "none": "drops nothing itself"}[self.masks]
        return lines


ADAPTED_MODELS = frozenset({"module", "hf_classifier", "hf_causal_lm"})
"""Models that adapt a module they did not build (:mod:`framework.models.adapter`)."""
STACK_SETTING = "`model.layers: <dotted path of the model's nn.ModuleList of blocks>`"
"""How an adapted model offers a layer stack, and the per-layer hidden states taken from it."""


def check_stack(model_name: str, caps: ModelCapabilities | None,
                needs: Sequence[tuple[str, StrategyNeeds]]) -> list[tuple[str, str]]:
    """Problems of a trial's strategies on a model, as ``(key, message)``; empty when it works.

    Args:
        model_name: the model's registered name, for messages.
        caps: what the model offers; None for a model that declares nothing (only the checks
            between strategies run).
        needs: ``(strategy name, needs)`` in the order of the spec's ``dropout`` list.
    """
    problems = []
    branch_owners = [i for i, (_, need) in enumerate(needs) if need.residual_branches]
    for i, (name, need) in enumerate(needs):
        where = f"dropout[{i}]"
        if i in branch_owners[1:]:
            first = branch_owners[0]
            problems.append((where, f"{name!r} and dropout[{first}] ({needs[first][0]}) both "
                                    "drop the residual branches; keep one"))
        if caps is not None:
            reason = _model_problem(caps, need, adapted=model_name in ADAPTED_MODELS)
            if reason:
                problems.append((where, f"{name!r} cannot act on model {model_name!r}: {reason}"))
        if need.independent_samples:
            reason = _sample_problem(needs, i)
            if reason:
                problems.append((where, f"{name!r} {reason}"))
        if need.samples_at_eval and not any(
                j != i and other.masks != "none" and not other.skip_layers
                for j, (_, other) in enumerate(needs)):
            problems.append((where, f"{name!r} keeps dropout on at evaluation, and no other "
                                    "strategy of this trial drops units: add one before it, e.g. "
                                    "`{name: standard, p: 0.1}`"))
        if need.drives:
            reason = _drive_problem(needs, i)
            if reason:
                problems.append((f"{where}.drives", f"{name!r} {reason}"))
    return problems


def _model_problem(caps: ModelCapabilities, need: StrategyNeeds, adapted: bool = False) -> str:
    """Why the model cannot serve ``need``; empty when it can. ``adapted``: a model of
    :data:`ADAPTED_MODELS`, whose refusals say what in its spec would make it eligible."""
    kinds = sorted(need.site_kinds)
    has = ", ".join(sorted(caps.site_kinds)) or "none"
    if need.recurrent_cells and not caps.recurrent_cells:
        return "it acts inside LSTM layers, and this model has none (use the `lstm_lm` model)"
    if need.pre_activation and adapted and not caps.pre_activation_kinds:
        return ("it needs sites that pass the layer's pre-activation, and an adapted model "
                "(`module`, `hf_*`) offers none: its sites take the place of the module's own "
                "dropout, which gets the activation only; use the `mlp` model, whose hidden "
                "sites do")
    if need.pre_activation and not (set(kinds) & caps.pre_activation_kinds):
        offered = ", ".join(sorted(caps.pre_activation_kinds)) or "none"
        return (f"it needs sites that pass the layer's pre-activation; on this model only these "
                f"kinds do: {offered} (the `mlp` model's hidden sites do)")
    if kinds and not set(kinds) & caps.site_kinds:
        return f"the model has no {', '.join(kinds)} dropout sites (it has: {has})"
    if kinds and need.every_site_kind and not set(kinds) <= caps.site_kinds:
        missing = ", ".join(k for k in kinds if k not in caps.site_kinds)
        return f"the model has no {missing} dropout sites (it has: {has}); remove them from `sites`"
    rate_only = sorted(set(kinds) & caps.rate_only_kinds)
    if need.replaces_op and rate_only:
        return (f"it replaces the dropout operation of its sites, and this model's "
                f"{', '.join(rate_only)} sites are rates its own code reads; leave "
                f"{', '.join(rate_only)} out of `sites`")
    if need.pre_activation and not set(kinds) <= caps.pre_activation_kinds:
        other = ", ".join(k for k in kinds if k not in caps.pre_activation_kinds)
        return (f"its {other} sites do not pass the pre-activation on this model; keep only "
                f"{', '.join(sorted(caps.pre_activation_kinds))} in `sites`")
    if need.residual_branches and not caps.residual_branches:
        return ("it drops the residual branches of the model's blocks, and this model has no "
                "residual-branch hooks (use a Transformer model: gpt, encoder)")
    if need.hidden_states and not caps.hidden_states:
        return ("it needs per-layer hidden states, which this model does not return"
                + (f"; set {STACK_SETTING} to take them from its blocks"
                   if adapted and caps.n_layers == 0 else ""))
    if need.attention_maps and not caps.attention_maps:
        return ("it needs attention maps, which this model cannot return; set `gamma: 0` "
                "(or use a model that returns them: gpt, encoder, hf_classifier, hf_causal_lm)")
    outside = [i for i in need.layers if not -caps.n_layers <= i < caps.n_layers]
    if outside:
        return (f"layers {outside} do not exist: the model has {caps.n_layers} layers "
                f"(0..{caps.n_layers - 1}, or negative from the top)")
    if need.skip_layers:
        if caps.n_layers == 0:
            return ("it skips layers of a layer stack, and this model has none"
                    + (f"; set {STACK_SETTING} to offer one" if adapted else ""))
        if not caps.skippable_layers:
            return f"no layer of its stack can be skipped: {caps.fixed_reason}"
        left_out = sorted(caps.fixed_layers - {i % caps.n_layers for i in need.layers})
        if need.layers and left_out:
            return (f"the layers kept at inference must include {left_out}, which always run "
                    f"({caps.fixed_reason})")
    return ""


def _drive_problem(needs: Sequence[tuple[str, StrategyNeeds]], owner: int) -> str:
    """Why ``needs[owner]``'s ``drives`` target cannot be driven; empty when it can."""
    target, _, rate = needs[owner][1].drives.partition(".")
    others = [(j, need) for j, (n, need) in enumerate(needs) if j != owner and n == target]
    if not others:
        present = ", ".join(n for j, (n, _) in enumerate(needs) if j != owner) or "none"
        return (f"drives {target}.{rate}, but no other strategy of this trial is {target!r} "
                f"(the trial's others: {present})")
    if len(others) > 1:
        return (f"drives {target}.{rate}, but {len(others)} strategies of this trial are "
                f"{target!r}: it would not be clear which one")
    offered = others[0][1].rates
    if rate not in offered:
        return (f"drives {target}.{rate}, but {target!r} has no rate {rate!r} a schedule may "
                f"set (it has: {', '.join(offered) or 'none'})")
    rivals = [j for j, (_, need) in enumerate(needs)
              if j != owner and need.drives == f"{target}.{rate}"]
    if rivals:
        return f"and dropout[{rivals[0]}] both drive {target}.{rate}; keep one"
    return ""


def _sample_problem(needs: Sequence[tuple[str, StrategyNeeds]], owner: int) -> str:
    per_example = [n for j, (n, need) in enumerate(needs)
                   if j != owner and need.masks == "per_example"]
    if per_example:
        return ""
    shared = [n for j, (n, need) in enumerate(needs) if j != owner and need.masks == "per_batch"]
    if shared:
        return (f"compares two dropout samples of each example, but {', '.join(shared)} draws "
                "one mask for the whole batch, so both copies get the same mask and the "
                "consistency terms are exactly 0; add a strategy that drops units per example "
                "(e.g. `standard` on the sites it leaves free)")
    return ("compares two dropout samples of each example, and no strategy of this trial drops "
            "units: add one before it, e.g. `{name: standard, p: 0.1}`")


def _list(items: Sequence[int]) -> str:
    return ", ".join(map(str, items)) or "none"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"
