"""C++ kernels for structured LSTM dropout: products over some rows of a weight, read in place.

Structured dropout (Sarma et al., NeurIPS 2021) keeps the same k of H units for the whole batch,
so a product with the masked state needs only k rows of the weight. torch reaches them by
gathering them into a new tensor (``index_select``) first, which, at every time step, moves about
as much memory as the smaller product saves (``docs/results/benchmarks.md``). The kernels in
``gathered_mm.cpp`` read the kept rows where they are, in register-blocked AVX-512 tiles:

* ``rows_mm_(out, a_t, w, idx, alpha)``: ``out += alpha * a_t^T @ w[idx]`` (forward);
* ``rows_dot(g_t, w, idx)``: ``w[idx] @ g_t`` (the state's gradient, transposed);
* ``rows_add_mm(w_grad, a_t, g, idx, alpha)``: ``w_grad[idx] += alpha * a_t @ g`` (the weight's).

They are built the first time a process asks for them, with this machine's C++ compiler through
``torch.utils.cpp_extension`` (about 20 s, once: the library is cached in torch's extension
folder, ``TORCH_EXTENSIONS_DIR``). The build targets the CPU that makes it (``-march=native``), so
the library's name carries a digest of the CPU's model and flags (:func:`build_name`): a cache
folder that outlives a machine, or is shared by machines of different CPUs, holds one build per
CPU instead of handing one CPU's instructions to another. Where they cannot be built or would
not be vectorised (no compiler, no AVX-512), :func:`load` returns None, logs why once, and the
LSTM gathers with torch as before; ``DROPOUT_LAB_NO_KERNELS=1`` turns them off (to compare).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from pathlib import Path
from typing import Any


SOURCE = Path(__file__).with_name("gathered_mm.cpp")
DISABLE_ENV = "DROPOUT_LAB_NO_KERNELS"
_log = logging.getLogger(__name__)


def build_name(cpu: dict[str, str]) -> str:
    """The extension's name for a CPU described by its ``/proc/cpuinfo`` entries: one build per
    vendor, family, model, stepping and instruction set (``flags``)."""
    described = "|".join(cpu.get(key, "") for key in
                         ("vendor_id", "cpu family", "model", "stepping", "flags"))
    return f"dropout_lab_gathered_mm_{hashlib.sha256(described.encode()).hexdigest()[:12]}"


@functools.cache
def load() -> Any | None:
    """The compiled kernels, or None (with the reason logged) when this machine has none."""
    if os.environ.get(DISABLE_ENV, "") not in ("", "0"):
        return None
    try:
        from torch.utils.cpp_extension import load as build

        from framework.training.device import cpu_fields

        kernels = build(name=build_name(cpu_fields()), sources=[str(SOURCE)],
                        extra_cflags=["-O3", "-march=native"], verbose=False)
    except Exception as error:  # no compiler, no ninja, no Python headers
        _log.warning("structured LSTM kernels not built (%s: %s); gathering with torch instead",
                     type(error).__name__, str(error)[:300])
        return None
    if not kernels.vectorized():
        _log.warning("structured LSTM kernels need AVX-512, which this CPU lacks; gathering with "
                     "torch instead")
        return None
    return kernels
