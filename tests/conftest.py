"""Shared fixtures: a tiny study that trains in about a second, and private stores per test."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
import functools
import os
from pathlib import Path
import textwrap
from typing import Any

import pytest


ROOT = Path(__file__).resolve().parents[1]

# No test may download a Hugging Face model or tokenizer: they are built from configs, or saved
# into the test's own folder and loaded from there (set before transformers is imported).
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# 2% of the text held out (1% val, 1% test): a confirmation scores the whole test split once per
# run, which at 10% (55,770 characters, 3,485 windows) took most of a tiny trial's time.
TINY_STUDY = """
name: {name}
seed: 0
model: {{name: gpt, n_layer: 1, n_head: 2, n_embd: 16, block_size: 16}}
data: {{name: shakespeare_char, held_out_fraction: 0.02}}
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


@pytest.fixture(scope="session", autouse=True)
def _session_cwd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Module and session fixtures run before any test's own folder exists: give them one too.

    MLflow puts the artifacts of an experiment created without an artifact location (a tracking
    URI given without --home) under ``./mlruns``; nothing a test runs may write into the checkout.
    """
    before = Path.cwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    yield
    os.chdir(before)


@pytest.fixture(scope="session", autouse=True)
def _store_template_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The pre-migrated MLflow store that new homes copy: made once per session, in its own
    folder (child processes inherit the variable), not in the user's cache."""
    from framework.tracking.store import TEMPLATE_DIR_ENV

    before = os.environ.get(TEMPLATE_DIR_ENV)
    os.environ[TEMPLATE_DIR_ENV] = str(tmp_path_factory.mktemp("store-template"))
    yield
    if before is None:
        os.environ.pop(TEMPLATE_DIR_ENV, None)
    else:
        os.environ[TEMPLATE_DIR_ENV] = before


@pytest.fixture(autouse=True)
def _test_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs in its own temporary folder (tests reach the repository through ROOT)."""
    monkeypatch.chdir(tmp_path)


@dataclass(frozen=True)
class TinyRuns:
    """Finished tiny studies in one home (see :func:`tiny_runs`)."""

    home: Path
    locations: Any
    files: dict[str, Path]
    """The study file of each study, by study name."""


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory: pytest.TempPathFactory) -> TinyRuns:
    """Studies ``searched`` (2 trials, the defaults) and ``kept`` (1 trial that keeps its last
    training state), run once per session for the tests that read what they left (creating the
    MLflow store alone takes seconds). Tests may add reports, not trials."""
    from framework.config import load_spec
    from framework.tracking import Locations
    from framework.tuning.study import run_study

    folder = tmp_path_factory.mktemp("tiny-runs")
    home = folder / "mlruns"
    files = {name: write_study(folder, TINY_STUDY.format(name=name), f"{name}.yaml")
             for name in ("searched", "kept")}
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        locations = Locations.resolve(home)
        run_study(load_spec(files["searched"]), locations)
        run_study(load_spec(files["kept"], ["search.n_trials=1", "train.keep_last=true"]),
                  locations)
    return TinyRuns(home, locations, files)


@functools.cache
def _app() -> Any:
    """The CLI app with every command module registered, as ``main()`` does (once)."""
    import importlib

    from framework.cli.app import COMMAND_MODULES
    from framework.cli.app import app

    for module in COMMAND_MODULES:
        importlib.import_module(module).register(app)
    return app


def invoke(*args: str) -> Any:
    """Run ``dropout-lab ARGS`` in this process (no interpreter start-up): a click ``Result``
    with ``exit_code``, ``stdout`` and ``stderr``."""
    from typer.testing import CliRunner

    return CliRunner().invoke(_app(), list(args))
