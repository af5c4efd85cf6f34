"""Checks of a whole study that no single field's schema can make, run before anything exists.

Each refuses what would otherwise fail every trial of a study that validated: a number that is
not finite, a dataset file that is not there or a split too short for the model's windows (the
dataset config's own ``check``), a model that does not fit the data (the model config's own
``check``: an own module's vocabulary and output size), and a model that cannot fit in the memory
it would train in: this machine's, or its smallest GPU's when the study trains on CUDA.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
import math
import os
from pathlib import Path
from typing import Any

from framework.config.errors import format_loc
from framework.errors import SpecError
from framework.models.memory import MemoryEstimate


def check_finite(tree: Any) -> None:
    """Refuse ``inf`` and ``nan`` anywhere in a spec (plain data or a validated dump).

    Raises:
        SpecError: naming the first key that holds one.
    """
    for loc, value in _leaves(tree, []):
        if isinstance(value, float) and not math.isfinite(value):
            raise SpecError(f"{value} is not a finite number (every number in a study must be)",
                            key=format_loc(loc))


def check_study(spec: Any) -> None:
    """Everything about a validated study that can be known wrong now, not in every trial.

    Raises:
        SpecError: naming the key at fault.
    """
    # pydantic turns strings such as "inf" into floats, so look again after validation.
    check_finite(spec.model_dump(mode="python"))
    data_check = getattr(spec.data, "check", None)
    if data_check is not None:
        data_check(spec)
    check_model(spec)
    check_memory(spec)


def check_model(spec: Any) -> None:
    """The model config's own check against the study's data, if it has one (``check``): an own
    module (``module``) runs once on a batch shaped like the data's.

    Raises:
        SpecError: naming the model's key at fault.
    """
    model_check = getattr(spec.model, "check", None)
    if model_check is not None:
        model_check(spec)


def _leaves(tree: Any, loc: list[Any]) -> Iterator[tuple[list[Any], Any]]:
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _leaves(value, [*loc, key])
    elif isinstance(tree, list | tuple):
        for index, value in enumerate(tree):
            yield from _leaves(value, [*loc, index])
    else:
        yield loc, tree


@dataclass(frozen=True)
class MemoryBudget:
    """The memory a training can use, where it is, and how wide its saved activations are."""

    available: int | None
    """Bytes; None when unknown (nothing is refused)."""
    where: str
    """As the error names it: ``this machine's``, ``the GPU's``."""
    bytes_per_activation: int = 4
    """float32 on the CPU; on CUDA the loop autocasts to bf16 where it can, so 2 keeps the
    estimate a lower bound there."""


def memory_budget(device: str) -> MemoryBudget:
    """The budget of a training on ``train.device`` = ``device`` on this machine.

    ``auto`` trains on CUDA only where torch sees a GPU; torch is imported only where a GPU
    driver is installed, so that validating a study on a machine without one stays quick.
    """
    cpu = MemoryBudget(machine_memory(), "this machine's")
    if device == "cpu" or not any(Path(p).exists() for p in ("/proc/driver/nvidia", "/dev/kfd")):
        return cpu
    import torch

    if not torch.cuda.is_available():
        return cpu  # ``cuda`` itself is refused by the device check, with its reason
    smallest = min(torch.cuda.get_device_properties(i).total_memory
                   for i in range(torch.cuda.device_count()))  # workers take one GPU each
    return MemoryBudget(smallest, "the GPU's", bytes_per_activation=2)


def check_memory(spec: Any, budget: MemoryBudget | None = None) -> None:
    """Refuse a model whose training cannot fit in memory, with the figures.

    Args:
        budget: what to compare with; default: that of every device the study may train on
            (``train.device`` and any searched choices).

    Raises:
        SpecError: naming ``model`` when the parameters alone do not fit, else
            ``train.batch_size``.
    """
    estimate = estimate_memory(spec)
    if estimate is None:
        return
    if budget is None:
        searched = spec.search.space.get("train.device")
        devices = {spec.train.device, *map(str, getattr(searched, "choices", ()))}
        for device in sorted(devices):
            check_memory(spec, memory_budget(device))
        return
    needed = estimate.total_bytes_at(budget.bytes_per_activation)
    if budget.available is None or needed <= budget.available:
        return
    activations = needed - estimate.parameter_bytes
    precision = "float32" if budget.bytes_per_activation == 4 else "bf16"
    key = "model" if estimate.parameter_bytes > budget.available else "train.batch_size"
    raise SpecError(
        f"training needs at least {_size(needed)}, more than {budget.where} "
        f"{_size(budget.available)} of memory: {estimate.parameters:,} parameters take "
        f"{_size(estimate.parameter_bytes)} (float32 weights, gradients and AdamW's two "
        f"moments) and the {precision} activations of a batch of {estimate.batch} about "
        f"{_size(activations)}; make the model or the batch smaller", key=key)


def estimate_memory(spec: Any) -> MemoryEstimate | None:
    """The model's own lower bound (its spec's ``memory_estimate``); None if it gives none."""
    estimate = getattr(spec.model, "memory_estimate", None)
    if estimate is None:
        return None
    hint = getattr(spec.data, "info_hint", None)
    info = hint() if hint is not None else {}
    block = getattr(spec.data, "block_size", None) or getattr(spec.model, "block_size", 1)
    return estimate(info, spec.train.batch_size, block)


def machine_memory() -> int | None:
    """Physical memory, or the cgroup's limit when lower (a container); None if unknown."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
    except OSError:
        return total
    return min(total, int(limit)) if limit.isdigit() else total


def _size(n_bytes: float) -> str:
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    power = 0
    while n_bytes >= 1024 and power < len(units) - 1:
        n_bytes /= 1024
        power += 1
    return f"{n_bytes:,.1f} {units[power]}"
