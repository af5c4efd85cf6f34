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
CPU instead of handing one CPU's instructions to another. torch guards each build folder with a
``lock`` file that a killed process leaves behind, after which every later load would wait for
ever; loads here hold a lock the system releases when its holder dies, and clear such a stale
file first (:func:`build_directory` says where). Where they cannot be built or would not be
vectorised (no compiler, no AVX-512), :func:`load` returns None, logs why once, and the LSTM
gathers with torch as before; ``DROPOUT_LAB_NO_KERNELS=1`` turns them off (to compare).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from pathlib import Path
import sys
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


def build_directory(name: str) -> Path:
    """Where the extension ``name`` is built and cached: ``$TORCH_EXTENSIONS_DIR`` (else torch's
    default root), then one folder per Python and torch version, then ``name``."""
    import torch
    from torch.utils.cpp_extension import get_default_build_root

    root = Path(os.environ.get("TORCH_EXTENSIONS_DIR") or get_default_build_root())
    versions = f"py{sys.version_info.major}{sys.version_info.minor}_torch{torch.__version__}"
    return root / versions / name


def _build(name: str) -> Any:
    from filelock import FileLock
    from torch.utils.cpp_extension import load as build

    folder = build_directory(name)
    folder.mkdir(parents=True, exist_ok=True)
    # flock: released by the system when its holder dies, unlike torch's ``lock`` file. Every
    # load of this extension holds it, so a ``lock`` file found while holding it is stale.
    with FileLock(folder.with_name(f"{name}.lock")):
        (folder / "lock").unlink(missing_ok=True)
        return build(name=name, sources=[str(SOURCE)], build_directory=str(folder),
                     extra_cflags=["-O3", "-march=native"], verbose=False)


@functools.cache
def load() -> Any | None:
    """The compiled kernels, or None (with the reason logged) when this machine has none."""
    if os.environ.get(DISABLE_ENV, "") not in ("", "0"):
        return None
    try:
        from framework.training.device import cpu_fields

        kernels = _build(build_name(cpu_fields()))
    except Exception as error:  # no compiler, no ninja, no Python headers
        _log.warning("structured LSTM kernels not built (%s: %s); gathering with torch instead",
                     type(error).__name__, str(error)[:300])
        return None
    if not kernels.vectorized():
        _log.warning("structured LSTM kernels need AVX-512, which this CPU lacks; gathering with "
                     "torch instead")
        return None
    return kernels
