"""Any ``torch.nn.Module`` as a model of the framework: its dropout becomes dropout sites.

The adapter leaves the user's code alone. It walks the built module and

* replaces every ``nn.Dropout`` by a :class:`~framework.models.sites.DropoutSite` at the
  module's own rate (a module shared by several parents becomes one site);
* turns every float attribute whose name contains ``dropout`` (``attention_dropout`` of a Llama
  attention, ``dropout`` of ``nn.MultiheadAttention``: rates that fused attention reads as a
  number) into a :class:`RateAttributeSite`, a child site whose rate is copied into the attribute
  before each forward pass of its module;
* tags each site with a kind from the spec's rules, then from :data:`DEFAULT_RULES` (glob, or
  ``re:`` + a regular expression, on the qualified name; the first match wins);
* exposes the layer stack named by a dotted path (``encoder.layer``) as ``model.layers``, so
  LayerDrop's replacement list lands where the module's own forward iterates.

Sites that no strategy claims keep the rate the module was built with; a claimed site drops only
what its strategy sets. :func:`survey` describes what a spec's module offers without training it,
for the checks made when a study is validated.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass
import fnmatch
import functools
import hashlib
import importlib
import importlib.util
import inspect
from pathlib import Path
import re
import sys
from typing import Any
from typing import TypeVar

import torch
from torch import nn
import torch.nn.functional as F

from framework.config.errors import KeyedValueError
from framework.contract import ModelCapabilities
from framework.models.base import LayeredModel
from framework.models.base import ModelOutput
from framework.models.sites import DropoutSite
from framework.models.sites import StrategyIncompatible


DEFAULT_RULES: tuple[tuple[str, str], ...] = (
    ("*attn_drop*", "attention"),
    ("*attn_dropout*", "attention"),
    ("*attention_dropout*", "attention"),
    ("*attention.self.dropout", "attention"),
    ("*attention.dropout", "attention"),
    ("*attn.dropout", "attention"),
    ("*resid_drop*", "residual"),
    ("*hidden_dropout*", "residual"),
    ("*proj_drop*", "residual"),
    ("*output.dropout", "residual"),
    ("*mlp.dropout", "residual"),
    ("*mlp.drop", "residual"),
    ("*ffn.dropout", "residual"),
    ("*.dropout1", "residual"),
    ("*.dropout2", "residual"),
    ("*.dropout3", "residual"),
    ("*emb*drop*", "embedding"),
    ("*input_drop*", "embedding"),
    ("transformer.drop", "embedding"),
    ("*classifier*drop*", "output"),
    ("*head*drop*", "output"),
    ("*out_drop*", "output"),
    ("*final_drop*", "output"),
    ("dropout", "output"),
    ("*", "hidden"),
)
"""Kinds by qualified name, tried after the spec's own rules. They follow common names: GPT-2's
``attn_dropout``/``resid_dropout``/``transformer.drop``, BERT's ``attention.self.dropout``/
``output.dropout``/``embeddings.dropout``, ``nn.TransformerEncoderLayer``'s ``dropout1``/
``dropout2`` (after each branch) and ``dropout`` (inside the feed-forward: ``hidden``), timm's
``attn_drop``/``proj_drop``; a top-level ``dropout`` is the one before a classification head."""

INFO_KEYS = ("vocab_size", "num_classes", "input_dim", "pad_id")
"""Dataset facts passed to a factory whose signature names them."""


class AdapterError(KeyedValueError):
    """A model that cannot be adapted as the spec says; ``key`` names the spec's field (so a
    study that names it is refused at validation with that key)."""


@dataclass(frozen=True)
class SiteInfo:
    """One dropout site found in a module."""

    name: str
    """Qualified name in the user's module (for an attribute: its module's name + the attribute)."""
    kind: str
    p: float
    """The module's own rate, which the site keeps unless a strategy claims it."""
    reached: str
    """``module`` (an ``nn.Dropout`` replaced) or ``attribute`` (a rate the module reads)."""


@dataclass(frozen=True)
class Survey:
    """What a built module offers: its sites, its layer stack and any dropout left alone."""

    sites: tuple[SiteInfo, ...]
    stack: str | None
    n_layers: int
    left_alone: tuple[str, ...] = ()
    """Dropout modules that are not ``nn.Dropout`` (``Dropout2d``, ``AlphaDropout``...), which
    no strategy reaches."""

    def capabilities(self, *, hidden_states: bool, attention_maps: bool,
                     replaceable_attributes: bool = False) -> ModelCapabilities:
        """What the module offers; ``replaceable_attributes``: its rate attributes' dropout
        operation is routed through the site (the Hugging Face attention), so ops may replace it.
        """
        attributes = frozenset(s.kind for s in self.sites if s.reached == "attribute")
        return ModelCapabilities(
            site_kinds=frozenset(site.kind for site in self.sites), n_layers=self.n_layers,
            rate_only_kinds=frozenset() if replaceable_attributes else attributes,
            hidden_states=hidden_states and self.n_layers > 0, attention_maps=attention_maps)


def kind_of(name: str, rules: Mapping[str, str]) -> str:
    """The kind of the site at ``name``: the first matching rule of ``rules``, then the defaults.

    A rule is a glob on the whole qualified name (``*`` crosses dots) or, prefixed with ``re:``,
    a regular expression searched in it.
    """
    for pattern, kind in [*rules.items(), *DEFAULT_RULES]:
        if pattern.startswith("re:"):
            if re.search(pattern[3:], name):
                return kind
        elif fnmatch.fnmatchcase(name, pattern):
            return kind
    return "hidden"


class RateAttributeSite(DropoutSite):
    """A site for a rate that the module reads as a number (fused attention's ``dropout_p``).

    The module's own code draws the mask, so by default only the rate reaches such a site and
    assigning an ``op`` (a strategy that replaces the dropout operation) is refused rather than
    silently ignored. An adapter that routes the op itself (the Hugging Face models' attention)
    clears ``op_refused``.
    """

    op_refused = True

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "op" and value is not None and self.op_refused:
            raise StrategyIncompatible(
                f"the {self.kind} site {getattr(self, 'where', '')!r} is a rate that the "
                "module's own attention code reads; a strategy can set its rate but not replace "
                "its dropout operation (leave this kind out of its `sites`)")
        super().__setattr__(name, value)


def _copy_rates(module: nn.Module, args: Any) -> None:
    """Forward pre-hook: give the module's rate attributes the current rates of their sites."""
    # A module-level function (no closure), so deep copies of the model keep a working hook.
    for attr, site_name in module._dropout_lab_rates.items():
        setattr(module, attr, module._modules[site_name].p)


def adapt_dropout(net: nn.Module, rules: Mapping[str, str]) -> tuple[list[SiteInfo], list[str]]:
    """Turn ``net``'s dropout into sites, in place.

    Returns:
        The sites found, in module order, and the names of dropout modules left alone.
    """
    found: list[SiteInfo] = []
    replaced: dict[int, DropoutSite] = {}
    left_alone = []
    for parent_name, parent in list(net.named_modules(remove_duplicate=False)):
        if isinstance(parent, DropoutSite):
            continue
        for child_name, child in list(parent.named_children()):
            name = f"{parent_name}.{child_name}" if parent_name else child_name
            if isinstance(child, nn.Dropout):
                site = replaced.get(id(child))
                if site is None:
                    site = replaced[id(child)] = DropoutSite(kind_of(name, rules), child.p)
                    site.where = name
                    found.append(SiteInfo(name, site.kind, child.p, "module"))
                setattr(parent, child_name, site)
                if site.kind == "attention":
                    parent._dropout_lab_attention = child_name
            elif isinstance(child, nn.modules.dropout._DropoutNd) and name not in left_alone:
                left_alone.append(name)
        found.extend(_adapt_rate_attributes(parent, parent_name, rules))
    return found, left_alone


def _adapt_rate_attributes(module: nn.Module, module_name: str,
                           rules: Mapping[str, str]) -> list[SiteInfo]:
    if "_dropout_lab_rates" in vars(module):
        return []  # reached again through another parent
    rates = {attr: value for attr, value in vars(module).items()
             if "dropout" in attr and type(value) is float and 0.0 <= value <= 1.0}
    if not rates:
        return []
    module._dropout_lab_rates = {}
    found = []
    for attr, value in rates.items():
        name = f"{module_name}.{attr}" if module_name else attr
        site = RateAttributeSite(kind_of(name, rules), value)
        site.where = name
        module.add_module(f"{attr}_site", site)
        module._dropout_lab_rates[attr] = f"{attr}_site"
        if site.kind == "attention":
            module._dropout_lab_attention = f"{attr}_site"
        found.append(SiteInfo(name, site.kind, value, "attribute"))
    module.register_forward_pre_hook(_copy_rates)
    return found


def attention_site(module: nn.Module) -> DropoutSite | None:
    """The attention site of an attention module (its own rate's site), if the adapter found one.
    """
    name = getattr(module, "_dropout_lab_attention", None)
    return None if name is None else module._modules[name]


def resolve_stack(net: nn.Module, path: str) -> nn.ModuleList:
    """The ``nn.ModuleList`` at the dotted ``path`` of ``net``.

    Raises:
        AdapterError: naming ``model.layers`` when there is none.
    """
    node: Any = net
    for i, part in enumerate(path.split(".")):
        child = node._modules.get(part) if isinstance(node, nn.Module) else None
        if child is None:
            where = ".".join(path.split(".")[:i]) or "the module"
            known = ", ".join(node._modules) if isinstance(node, nn.Module) else ""
            raise AdapterError("model.layers", f"{where} has no submodule {part!r}"
                               + (f" (it has: {known})" if known else ""))
        node = child
    if not isinstance(node, nn.ModuleList):
        raise AdapterError("model.layers", f"{path} is a {type(node).__name__}; the layer stack "
                           "must be an nn.ModuleList that the module's forward iterates")
    return node


class AdaptedModel(LayeredModel):
    """A user's module (``self.net``) with dropout sites, its stack exposed as ``self.layers``.

    ``self.layers`` reads and writes the module's own list at ``stack_path``: LayerDrop's
    replacement and a pruned copy's shorter list are what the module's forward then iterates,
    and the state-dict keys stay the module's own (``net.<path>.<i>...``).
    """

    def __init__(self, spec: Any, net: nn.Module, rules: Mapping[str, str],
                 stack_path: str | None):
        super().__init__()
        self.spec = spec
        self.net = net
        self.found, self.left_alone = adapt_dropout(net, rules)
        self.stack_path = stack_path
        if stack_path is not None:
            resolve_stack(net, stack_path)
        keep = getattr(spec, "keep_layers", None)
        if keep is not None:
            if stack_path is None:
                raise AdapterError("model.keep_layers", "the model has no layer stack to keep "
                                   "layers of; name it with `layers`")
            stack = self.layers
            if not all(0 <= i < len(stack) for i in keep) or len(set(keep)) != len(keep):
                raise AdapterError("model.keep_layers", f"{keep} are not distinct layers of "
                                   f"the {len(stack)} of {stack_path} (0-based)")
            self.layers = nn.ModuleList([stack[i] for i in sorted(keep)])

    def __getattr__(self, name: str) -> Any:
        if name == "layers":
            path = self.__dict__.get("stack_path")
            if path is None:
                raise AttributeError(f"{type(self).__name__} has no layer stack")
            return functools.reduce(getattr, path.split("."), self._modules["net"])
        return super().__getattr__(name)

    def __setattr__(self, name: str, value: Any) -> None:
        path = self.__dict__.get("stack_path")
        if name == "layers" and path is not None:
            *parents, last = path.split(".")
            setattr(functools.reduce(getattr, parents, self._modules["net"]), last, value)
            return
        super().__setattr__(name, value)

    @property
    def n_layers(self) -> int:
        return len(self.layers) if self.stack_path is not None else 0

    def kept_layers(self) -> list[int]:
        """The model's indices of the layers that ran in the latest forward pass."""
        if self.stack_path is None:
            return []
        return list(getattr(self.layers, "last_kept", range(len(self.layers))))

    def survey(self) -> Survey:
        return Survey(tuple(self.found), self.stack_path, self.n_layers,
                      tuple(self.left_alone))


class ModuleModel(AdaptedModel):
    """The ``module`` model: a factory's module, called on the batch, scored by cross-entropy.

    The module gets the batch's token ids (``call: inputs``), the ids and the padding mask
    (``inputs_mask``) or the :class:`~framework.data.base.Batch` itself (``batch``), and returns
    logits: a tensor, an object with ``.logits``, or a tuple whose first item they are. Logits of
    one row per example (B, classes) or per token (B, T, vocab) are scored against the batch's
    targets (pads left out). Hidden states for LR-Drop are the outputs of the stack's layers.
    """

    def __init__(self, spec: Any, info: dict[str, Any]):
        net = build_factory(spec.factory, spec.kwargs, info, spec.block_size,
                            folder=spec.study_folder)
        super().__init__(spec, net, spec.sites, spec.layers)

    def forward(self, batch: Any, *, need_hidden: bool = False,
                need_attention: bool = False) -> ModelOutput:
        with self._layer_outputs(need_hidden) as outputs:
            raw = call_module(self.net, self.spec.call, batch)
        out = ModelOutput(logits=logits_of(raw), n_layers=self.n_layers)
        if need_hidden:
            out.layer_ids = sorted(outputs)
            out.hidden_states = [outputs[i] for i in out.layer_ids]
        if batch.targets is not None:
            out.loss = cross_entropy(out.logits, batch.targets, batch.mask)
        return out

    @contextmanager
    def _layer_outputs(self, wanted: bool) -> Iterator[dict[int, torch.Tensor]]:
        """Collect each stack layer's output (by its index) while the block runs."""
        outputs: dict[int, torch.Tensor] = {}
        handles = []
        if wanted and self.stack_path is not None:
            for index, layer in enumerate(self.layers._modules.values()):
                def keep(module: nn.Module, args: Any, output: Any, index: int = index) -> None:
                    outputs[index] = output[0] if isinstance(output, tuple | list) else output
                handles.append(layer.register_forward_hook(keep))
        try:
            yield outputs
        finally:
            for handle in handles:
                handle.remove()


def call_module(net: nn.Module, call: str, batch: Any) -> Any:
    """What ``net`` returns for ``batch``, called as the spec's ``call`` says: with the token ids
    (``inputs``), the ids and the padding mask (``inputs_mask``) or the batch itself."""
    if call == "inputs":
        return net(batch.inputs)
    if call == "inputs_mask":
        return net(batch.inputs, batch.mask)
    return net(batch)


def logits_of(raw: Any) -> torch.Tensor:
    """The logits in what a module returned: a tensor, ``.logits``, ``["logits"]`` or ``[0]``."""
    if isinstance(raw, torch.Tensor):
        return raw
    if getattr(raw, "logits", None) is not None:
        return raw.logits
    if isinstance(raw, Mapping) and "logits" in raw:
        return raw["logits"]
    if isinstance(raw, tuple | list) and raw and isinstance(raw[0], torch.Tensor):
        return raw[0]
    raise TypeError(f"the module returned {type(raw).__name__}; it must return its logits (a "
                    "tensor, an object with `.logits`, or a tuple that starts with them)")


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor,
                  mask: torch.Tensor | None) -> torch.Tensor:
    """Mean cross-entropy of (B, K) logits per example or (B, T, V) per token; pads left out."""
    if mask is not None and mask.shape == targets.shape and logits.dim() == targets.dim() + 1:
        targets = targets.masked_fill(~mask.bool(), -100)
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1),
                           ignore_index=-100)


def load_factory(reference: str, folder: Path | None = None) -> Callable[..., nn.Module]:
    """The callable ``"package.module:function"`` (or ``"path/to/file.py:function"``) names.

    Args:
        folder: the study file's folder. A module that is not imported yet is looked for there
            first, then in the current folder, then on the Python path; a relative file path is
            tried from the current folder, then from ``folder``.

    Raises:
        AdapterError: naming ``model.factory``.
    """
    module_name, sep, attr = reference.partition(":")
    if not sep or not module_name or not attr:
        raise AdapterError("model.factory", f"expected 'package.module:function', got "
                           f"{reference!r}")
    try:
        if module_name.endswith(".py"):
            module = _import_file(_existing_file(Path(module_name), folder))
        else:
            module = _import_module(module_name, folder)
    except ImportError as exc:
        missing = getattr(exc, "name", None) == module_name.partition(".")[0]
        where = (f" (looked in {folder}, the current folder and the Python path)"
                 if missing and folder is not None else "")
        raise AdapterError("model.factory", f"cannot import {module_name}: {exc}{where}"
                           ) from None
    except Exception as exc:  # the module's own code failed while it was imported
        raise AdapterError("model.factory", f"importing {module_name} failed: "
                           f"{type(exc).__name__}: {exc}") from None
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise AdapterError("model.factory", f"{module_name} has no {attr!r}")
        target = getattr(target, part)
    if not callable(target):
        raise AdapterError("model.factory", f"{reference} is not callable")
    return target


def _import_module(name: str, folder: Path | None) -> Any:
    """Import ``name``, from the study's folder or the current one when it holds the module.

    Either folder is on the import path for this import only, so a study's ``my_models.py``
    neither needs ``PYTHONPATH`` nor shadows other imports later.
    """
    top = name.partition(".")[0]
    if top not in sys.modules:
        for base in (folder, Path.cwd()):
            if base is not None and ((base / f"{top}.py").is_file()
                                     or (base / top / "__init__.py").is_file()):
                sys.path.insert(0, str(base))
                try:
                    return importlib.import_module(name)
                finally:
                    sys.path.remove(str(base))
    return importlib.import_module(name)


def _existing_file(path: Path, folder: Path | None) -> Path:
    """``path`` from the current folder, else from the study's folder when it is there."""
    if path.is_file() or path.is_absolute() or folder is None:
        return path
    return folder / path if (folder / path).is_file() else path


def _import_file(path: Path) -> Any:
    if not path.is_file():
        raise ImportError(f"{path} is not a file")
    resolved = path.resolve()
    name = f"dropout_lab_factories.{resolved.stem}_{hashlib.sha1(bytes(resolved)).hexdigest()[:8]}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, resolved)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    return sys.modules[name]


def build_factory(reference: str, kwargs: Mapping[str, Any], info: Mapping[str, Any],
                  block_size: int, folder: Path | None = None) -> nn.Module:
    """Call the factory with ``kwargs`` plus the facts its signature names and ``kwargs`` leaves
    out: the dataset's (:data:`INFO_KEYS`) and the spec's ``block_size``.

    Args:
        folder: the study file's folder, where the factory's module may be (:func:`load_factory`).

    Raises:
        AdapterError: naming ``model.factory`` or ``model.kwargs``.
    """
    factory = load_factory(reference, folder)
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = {}
    known = {**info, "block_size": block_size}
    facts = {key: known[key] for key in (*INFO_KEYS, "block_size")
             if key in known and key in params and key not in kwargs}
    try:
        net = factory(**kwargs, **facts)
    except TypeError as exc:
        raise AdapterError("model.kwargs", f"{reference}: {exc}") from None
    if not isinstance(net, nn.Module):
        raise AdapterError("model.factory", f"{reference} returned {type(net).__name__}, not a "
                           "torch.nn.Module")
    return net


PLACEHOLDER_FACT = 8
"""Stands for each dataset fact (vocabulary size, classes) when a spec is surveyed: the sites and
the layer stack of a module do not depend on them."""

_surveys: dict[str, Survey] = {}


def survey(spec: Any, build: Callable[[], tuple[nn.Module, str | None]]) -> Survey:
    """What the module that ``build`` makes (with the path of its layer stack) offers, once per
    spec and process.

    The module is built on the ``meta`` device: parameters get shapes and no memory or
    initialisation, so surveying is cheap whatever the model's size (a 124M-parameter GPT-2 from
    its config: 0.25 s on meta against 8.6 s on the CPU of a 2-core machine). A factory that
    computes on real values while it builds (``.item()``, NumPy initialisation) fails on meta and
    is then built once on the CPU.

    Raises:
        AdapterError: naming the spec's field at fault.
    """
    key = f"{type(spec).__name__}:{spec.model_dump_json()}"
    if key not in _surveys:
        try:
            with torch.device("meta"):
                net, path = build()
        except AdapterError:
            raise
        except Exception:
            net, path = build_on_cpu(build)
        _surveys[key] = AdaptedModel(spec, net, spec.sites, path).survey()
    return _surveys[key]


Built = TypeVar("Built")


def build_on_cpu(build: Callable[[], Built], what: str = "building the model") -> Built:
    """``build()``, with any failure other than a keyed refusal refused under ``model``."""
    try:
        return build()
    except KeyedValueError:
        raise
    except Exception as exc:
        raise AdapterError("model", f"{what} failed: {type(exc).__name__}: {exc}") from None
