"""The compiled kernels of structured LSTM dropout: each equals its torch product, and a layer
that runs them equals one that gathers the kept rows with torch (and really runs them)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch

from framework.models import kernels as kernels_module
from framework.models.lstm import LSTM


def built() -> Any:
    kernels = kernels_module.load()
    if kernels is None:
        pytest.skip("the structured LSTM kernels do not build here (no C++ compiler, or a CPU "
                    "without AVX-512); the LSTM gathers with torch instead")
    return kernels


@pytest.mark.parametrize(("rows", "kept", "batch", "columns"),
                         [(64, 32, 16, 256), (40, 13, 48, 80), (40, 13, 18, 80)])
def test_each_kernel_equals_its_torch_product(rows: int, kept: int, batch: int,
                                              columns: int) -> None:
    """Full tiles, then every remainder: columns past the last 64, rows past the last 4."""
    kernels = built()
    torch.manual_seed(0)
    w = torch.randn(rows, columns)
    idx = torch.randperm(rows)[:kept].sort().values
    a_t = torch.randn(kept, batch)
    out = torch.randn(batch, columns)
    expected = out + 0.7 * a_t.t() @ w[idx]
    kernels.rows_mm_(out, a_t, w, idx, 0.7)
    close = {"rtol": 1e-5, "atol": 1e-5}  # the same sums, in another order
    torch.testing.assert_close(out, expected, **close)

    g = torch.randn(batch, columns)
    if batch % 16 == 0:  # its tiles span 16 examples: the LSTM calls it only for such batches
        torch.testing.assert_close(kernels.rows_dot(g.t().contiguous(), w, idx), w[idx] @ g.t(),
                                   **close)
    else:
        with pytest.raises(RuntimeError, match="multiple of 16"):
            kernels.rows_dot(g.t().contiguous(), w, idx)

    w_grad = torch.randn(rows, columns)
    expected = w_grad.clone().index_add_(0, idx, a_t @ g, alpha=1.5)
    kernels.rows_add_mm(w_grad, a_t, g, idx, 1.5)
    torch.testing.assert_close(w_grad, expected, **close)


def test_a_layer_with_kernels_equals_one_that_gathers(monkeypatch: pytest.MonkeyPatch) -> None:
    kernels = built()
    calls = {"rows_mm_": 0, "rows_dot": 0, "rows_add_mm": 0}

    class Counting:  # the kernels, counting their calls
        def __getattr__(self, name: str) -> Any:
            def call(*args: Any) -> Any:
                calls[name] += 1
                return getattr(kernels, name)(*args)
            return call

    monkeypatch.setattr(kernels_module, "load", Counting)
    torch.manual_seed(0)
    steps, batch, hidden = 5, 16, 32
    with_kernels = LSTM(24, [hidden, hidden]).train()
    for layer in with_kernels.layers:
        layer.structured_p = 0.5
        layer.compact_input_per_step = True  # the second layer's input product too
    gathering = copy.deepcopy(with_kernels)
    for layer in gathering.layers:
        layer.use_kernels = False
    x = torch.randn(steps, batch, 24)
    results = []
    for model in (with_kernels, gathering):
        torch.manual_seed(1)  # the same kept units in both
        out, states = model(x)
        (out.sin().sum() + states[1][1].square().sum()).backward()
        results.append([out.detach(), *(p.grad for p in model.parameters())])
    for got, want in zip(*results, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    # Both layers' recurrences (4 steps after the first) and the second layer's input (5 steps).
    assert calls == {"rows_mm_": 2 * 4 + 5, "rows_dot": 2 * 4 + 5, "rows_add_mm": 2 * 4 + 5}


def test_each_cpu_gets_its_own_build() -> None:
    """A cached -march=native build must not be loaded by a CPU of another model or flags."""
    cpu = {"vendor_id": "GenuineIntel", "cpu family": "6", "model": "207", "stepping": "2",
           "model name": "Intel(R) Xeon(R) Processor", "flags": "fpu avx2 avx512f"}
    name = kernels_module.build_name(cpu)
    assert name.isidentifier()  # the name of a Python extension module
    assert name == kernels_module.build_name({**cpu, "model name": "another name"})
    assert name != kernels_module.build_name({**cpu, "model": "106"})
    assert name != kernels_module.build_name({**cpu, "flags": "fpu avx2 avx512f avx512_fp16"})
    assert name != kernels_module.build_name({})  # no /proc/cpuinfo: a build of its own


def test_a_build_lock_left_by_a_killed_process_does_not_stop_later_loads() -> None:
    """torch waits, with no end, for its ``lock`` file in the build folder to go; a process
    killed while loading the kernels leaves it there."""
    import subprocess
    import sys

    from filelock import FileLock

    from framework.training.device import cpu_fields

    built()
    name = kernels_module.build_name(cpu_fields())
    folder = kernels_module.build_directory(name)
    with FileLock(folder.with_name(f"{name}.lock")):  # no load of this suite is under way
        (folder / "lock").touch()
    loaded = subprocess.run(
        [sys.executable, "-c", "from framework.models import kernels; "
         "assert kernels.load() is not None"], capture_output=True, text=True, timeout=300)
    assert loaded.returncode == 0, loaded.stderr
    assert not (folder / "lock").exists()
