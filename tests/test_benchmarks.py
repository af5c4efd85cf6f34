"""The benchmarks that the results pages quote run, on settings small enough for a test."""

from __future__ import annotations

from pathlib import Path
import subprocess
import sys

import pytest


ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_arms_benchmark_times_every_arm_and_the_dense_reference() -> None:
    small = ["model.n_hidden=16", "model.n_embd=8", "model.block_size=8", "train.batch_size=2"]
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "arms.py"),
         str(ROOT / "studies" / "structured_lstm.yaml"), *small, "--steps", "2", "--repeats", "1",
         "--variant", "structured_step_dense=structured_step,0.dense=true"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()
            if line.startswith("  ") and not line.strip().startswith("arm")}
    assert set(rows) == {"standard", "locked", "weight_drop", "structured_step",
                         "structured_seq", "structured_step_dense"}
    assert rows["standard"][-1] == "1.00x"  # the baseline arm against itself
    assert all(float(row[1]) > 0 for row in rows.values())
    assert "structured_step: " in result.stdout and "the speed of structured_step_dense" in (
        result.stdout)
