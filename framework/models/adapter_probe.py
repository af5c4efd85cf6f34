"""One forward pass of an own module (the ``module`` model) on a batch shaped like the data's.

Run when a study is validated, it refuses what would otherwise fail or mislead every trial: token
ids beyond the module's embedding (a vocabulary passed under another name than ``vocab_size``, or
fixed in ``kwargs``) and logits whose last dimension is not the task's (the vocabulary for
language modelling, the classes for classification). The data's facts come from their config's
``info_hint``, so no more of the data is read than its own check reads.

The batch holds two examples of the data's window length: token ids from 0 to the vocabulary's
last id, or float rows of the data's input size. A small module is built on the CPU and runs on
those ids; a large one (see :func:`_on_cpu`) runs on the ``meta`` device, where only shapes
exist, so its output is checked and its embedding only where it gets the ids as they are. A
forward pass that fails for any other reason is left to the trials, which may run where this one
cannot (a kernel that needs a GPU, an input shape other than the flat rows given here).
"""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Mapping
from contextlib import contextmanager
import inspect
import json
from typing import Any

import torch
from torch import nn

from framework.config.errors import KeyedValueError
from framework.data.base import Batch
from framework.errors import SpecError
from framework.models.adapter import PLACEHOLDER_FACT
from framework.models.adapter import build_factory
from framework.models.adapter import build_on_cpu
from framework.models.adapter import call_module
from framework.models.adapter import load_factory
from framework.models.adapter import logits_of


PROBE_EXAMPLES = 2
CPU_MAX_PARAMETERS = 30_000_000
"""Larger modules are probed on the meta device: building 85M parameters on the CPU of a 2-core
machine takes about a second, and validation builds once per searched variant."""
CPU_MAX_WORK = 4_000_000_000
"""Parameters x tokens of the batch above which the forward pass itself would be slow."""

_probed: set[str] = set()


class _OutOfRange(Exception):
    """An embedding was given ids beyond its rows (raised before it looks them up)."""

    def __init__(self, embedding: nn.Embedding, top: int, tokens: bool):
        super().__init__()
        self.embedding, self.top, self.tokens = embedding, top, tokens


def probe_module(spec: Any, data: Any) -> None:
    """Build ``spec``'s module for ``data`` and run it once on a batch shaped like the data's.

    Raises:
        SpecError: naming ``model.kwargs`` (a vocabulary or an output size the data contradicts),
            ``model.factory`` (a module that returns no logits) or ``model``.
    """
    info_hint = getattr(data, "info_hint", None)
    hint = dict(info_hint()) if info_hint is not None else {}
    window = int(getattr(data, "block_size", None) or getattr(data, "max_len", None)
                 or spec.block_size)
    key = json.dumps([spec.model_dump(mode="json"), hint, window, str(spec.study_folder)])
    if key in _probed:
        return
    try:
        _probe(spec, hint, window)
    except KeyedValueError as exc:
        raise SpecError(str(exc), key=exc.key) from None
    _probed.add(key)


def _probe(spec: Any, hint: Mapping[str, int], window: int) -> None:
    vocab, classes = hint.get("vocab_size"), hint.get("num_classes")
    facts = {"vocab_size": vocab or PLACEHOLDER_FACT, "num_classes": classes or PLACEHOLDER_FACT,
             "input_dim": hint.get("input_dim", PLACEHOLDER_FACT), "pad_id": hint.get("pad_id", 0)}
    with torch.random.fork_rng(devices=[]):  # validation leaves the trials' random state alone
        net = _build(spec, facts, PROBE_EXAMPLES * window)
        batch = _batch(hint.get("input_dim"), vocab, classes, window, _device_of(net))
        try:
            with torch.no_grad(), _guard_embeddings(net, batch.inputs, (vocab or 1) - 1):
                raw = call_module(net.eval(), spec.call, batch)
        except _OutOfRange as exc:
            raise _range_error(spec, exc, vocab, window) from None
        except Exception:
            return  # left to the trials (see the module's docstring)
    try:
        logits = logits_of(raw)
    except TypeError as exc:
        raise KeyedValueError("model.factory", str(exc)) from None
    if classes is not None:
        guessed = (vocab is None and "input_dim" not in hint
                   and logits.shape[-1:] == (PLACEHOLDER_FACT,))
        note = (f" ({PLACEHOLDER_FACT} stood for the vocabulary size, which is not known before "
                "the data are loaded)" if guessed else "")
        _check_width(spec, logits, classes, "num_classes", f"the data's {classes} classes", note)
    elif vocab is not None:
        _check_width(spec, logits, vocab, "vocab_size", f"the data's vocabulary of {vocab}")


def _build(spec: Any, facts: Mapping[str, int], tokens: int) -> nn.Module:
    """The module on the meta device, rebuilt on the CPU when that is cheap (:func:`_on_cpu`)."""
    def build() -> nn.Module:
        return build_factory(spec.factory, spec.kwargs, facts, spec.block_size,
                             folder=spec.study_folder)

    try:
        with torch.device("meta"):
            net = build()
    except KeyedValueError:
        raise
    except Exception:  # computes on real values while it builds: the CPU it is, as the survey
        return build_on_cpu(build, "building the model for the data")
    return build_on_cpu(build, "building the model for the data") if _on_cpu(net, tokens) else net


def _on_cpu(net: nn.Module, tokens: int) -> bool:
    parameters = sum(p.numel() for p in net.parameters())
    return parameters <= CPU_MAX_PARAMETERS and parameters * tokens <= CPU_MAX_WORK


def _device_of(net: nn.Module) -> torch.device:
    first = next(iter(net.parameters()), None)
    return first.device if first is not None else torch.device("cpu")


def _batch(input_dim: int | None, vocab: int | None, classes: int | None, window: int,
           device: torch.device) -> Batch:
    """Two examples: float rows of the input size, or windows of ids from 0 to the vocabulary's
    last id (all 0 when the vocabulary is not known before the data are loaded)."""
    n = PROBE_EXAMPLES
    labels = torch.zeros(n, dtype=torch.long, device=device)
    if input_dim is not None:
        return Batch(torch.linspace(0, 1, n * input_dim, device=device).view(n, input_dim), labels)
    ids = torch.linspace(0, (vocab or 1) - 1, n * window, device=device)
    inputs = ids.round().long().view(n, window)
    targets = labels if classes is not None else inputs.roll(-1, dims=1)
    return Batch(inputs, targets, torch.ones(n, window, dtype=torch.bool, device=device))


@contextmanager
def _guard_embeddings(net: nn.Module, tokens: torch.Tensor, top_token: int) -> Iterator[None]:
    """Raise :class:`_OutOfRange` before an ``nn.Embedding`` looks up ids beyond its rows.

    On the CPU the ids are read; on the meta device (shapes only) an embedding is checked only
    when it gets the batch's own ids tensor, whose top id is ``top_token``.
    """
    def check(module: nn.Module, args: tuple[Any, ...]) -> None:
        ids = args[0] if args else None
        if not isinstance(ids, torch.Tensor) or ids.numel() == 0 or ids.is_floating_point():
            return
        if ids.is_meta:
            same, top = ids is tokens, top_token if ids is tokens else None
        else:
            same = ids.shape == tokens.shape and torch.equal(ids, tokens)
            top = int(ids.max())
        if top is not None and top >= module.num_embeddings:
            raise _OutOfRange(module, top, same)

    handles = [m.register_forward_pre_hook(check) for m in net.modules()
               if isinstance(m, nn.Embedding)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _range_error(spec: Any, exc: _OutOfRange, vocab: int | None, window: int) -> KeyedValueError:
    rows = exc.embedding.num_embeddings
    if exc.tokens and vocab is not None:
        arg = _argument_set_to(spec, rows)
        fix = (f"set model.kwargs.{arg}: {vocab}" if arg
               else "pass the vocabulary size through model.kwargs")
        return KeyedValueError("model.kwargs", f"the model's embedding has {rows} rows but the "
                               f"data has a vocabulary of {vocab}; name the factory argument "
                               f"`vocab_size` (passed automatically) or {fix}")
    return KeyedValueError("model", f"an embedding of the model has {rows} rows and is given "
                           f"index {exc.top} on windows of {window} tokens (a position "
                           "embedding shorter than the data's windows?)")


def _check_width(spec: Any, logits: torch.Tensor, wanted: int, fact: str, what: str,
                 note: str = "") -> None:
    got = logits.shape[-1] if logits.dim() else 0
    if got == wanted:
        return
    arg = _argument_set_to(spec, got)
    fix = (f"set model.kwargs.{arg}: {wanted}" if arg
           else f"make its output layer {wanted} wide")
    raise KeyedValueError("model.kwargs" if arg in spec.kwargs else "model.factory",
                          f"the module's logits have {got} in their last dimension{note}, but "
                          f"the task needs {what}; name the factory argument `{fact}` (passed "
                          f"automatically) or {fix}")


def _argument_set_to(spec: Any, value: int) -> str | None:
    """The factory argument that holds ``value`` (in ``kwargs``, else as its default), if any."""
    for name, given in spec.kwargs.items():
        if type(given) is int and given == value:
            return name
    try:
        params = inspect.signature(load_factory(spec.factory, spec.study_folder)).parameters
    except (TypeError, ValueError):
        return None
    return next((name for name, param in params.items()
                 if type(param.default) is int and param.default == value), None)
