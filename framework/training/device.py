"""Device, precision, threads and seeds, and what CPU this is."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
import platform
import random

import numpy as np
import torch


def pick_device(requested: str) -> torch.device:
    if requested == "cuda" or (requested == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def device_problem(requested: str) -> str | None:
    """Why the ``train.device`` value ``requested`` cannot run on this machine; None if it can."""
    if requested != "cuda" or torch.cuda.is_available():
        return None
    if not torch.backends.cuda.is_built():
        return f"this torch ({torch.__version__}) was built without CUDA"
    return "torch sees no CUDA device on this machine"


def default_threads(workers: int = 1) -> int:
    """torch threads for each of ``workers`` local workers when ``train.threads`` is unset.

    The cores this process may run on, less the 1-minute load average (what other jobs use),
    shared among the workers, at least 1: on a busy machine more threads than free cores make
    every step wait for descheduled threads.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average on this platform
        load = 0.0
    free = max(1, round(cores - load))
    return max(1, free // workers)


def cpu_fields(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, str]:
    """The first processor's entries of ``/proc/cpuinfo`` (``model name``, ``flags``, ...); {}
    where there is no such file (not on Linux)."""
    fields: dict[str, str] = {}
    try:
        with cpuinfo.open(encoding="utf-8") as lines:
            for line in lines:
                if not line.strip():
                    break  # the first processor's block is enough: the others repeat it
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    return fields


def cpu_name(fields: dict[str, str] | None = None) -> str:
    """The CPU's model name with its family, model and stepping, e.g. "Intel(R) Xeon(R) Processor
    (cpu family 6, model 207, stepping 2)": virtual machines often report a generic name, and the
    three numbers still tell CPU generations apart (speeds and speed ratios differ between them).
    """
    fields = cpu_fields() if fields is None else fields
    name = fields.get("model name") or platform.processor() or platform.machine()
    ids = [f"{key} {fields[key]}" for key in ("cpu family", "model", "stepping") if key in fields]
    return f"{name} ({', '.join(ids)})" if ids else name


def configure_device(device: torch.device) -> None:
    """TF32 for the float32 matrix products left outside bf16 autocast, on CUDA devices that
    have it (Ampere and later; torch keeps full float32 elsewhere). Nothing on the CPU."""
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA where supported; full precision on the CPU."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
