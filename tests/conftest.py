"""Shared fixtures: a tiny study that trains in about a second, and private stores per test."""

from __future__ import annotations

from pathlib import Path
import textwrap

import pytest


ROOT = Path(__file__).resolve().parents[1]

TINY_STUDY = """
name: {name}
seed: 0
model: {{name: gpt, n_layer: 1, n_head: 2, n_embd: 16, block_size: 16}}
data: {{name: shakespeare_char}}
train: {{max_steps: 6, batch_size: 4, eval_every: 3, eval_batches: 2, warmup_steps: 1}}
dropout:
  - {{name: standard, p: 0.1}}
search:
  n_trials: 2
  sampler: {{name: random, seed: 0}}
  space:
    dropout.0.p: {{type: float, low: 0.0, high: 0.3}}
"""


def write_study(folder: Path, text: str, filename: str = "study.yaml") -> Path:
    path = folder / filename
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def tiny_study(tmp_path: Path) -> Path:
    """A valid 2-trial study of a 1-layer, 16-wide GPT for 6 steps."""
    return write_study(tmp_path, TINY_STUDY.format(name="tiny"))


@pytest.fixture
def locations(tmp_path: Path):
    from framework.tracking import Locations

    return Locations.resolve(tmp_path / "mlruns")


@pytest.fixture(autouse=True)
def _no_ambient_tracking(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
