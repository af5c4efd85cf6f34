"""The checkpoint door: plain files load, training states round-trip (random states included),
and anything else is refused as a ``SpecError`` naming the file, before any of it runs."""

from __future__ import annotations

from pathlib import Path
import random
import re

import numpy as np
import optuna
import pytest
import torch

from framework.errors import SpecError
from framework.training.checkpoint import load_checkpoint_file
from framework.training.checkpoint import load_training_state
from framework.training.checkpoint import save_training_state
from framework.tuning.objective import Objective


class _CreatesFileWhenUnpickled:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (open, (str(self.marker), "w"))


def training_state() -> dict:
    """A state shaped like the training loop's ``checkpoint`` callback argument."""
    return {"step": 3, "model": {"w": torch.ones(2)}, "optimizer": {"state": {}},
            "strategies": [{"p": 0.1}], "generator": torch.Generator().get_state(),
            "rng": (torch.get_rng_state(), random.getstate(), np.random.get_state()),
            "history": [{"step": 3, "val_loss": 2.5}], "best_step": 3,
            "best_state": {"w": torch.ones(2)}, "final": {}, "best_val": 2.5,
            "train_seconds": 0.1, "total_tokens": 96}


def test_a_training_state_round_trips_with_its_random_states(tmp_path: Path) -> None:
    np.random.seed(1)
    random.seed(1)
    state = training_state()
    expected = (np.random.rand(3), random.random(), torch.rand(3))
    save_training_state(state, tmp_path / "last.pt")

    loaded = load_training_state(tmp_path / "last.pt")
    torch_rng, python_rng, numpy_rng = loaded["rng"]
    np.random.seed(2)
    np.random.set_state(numpy_rng)
    random.setstate(python_rng)
    torch.set_rng_state(torch_rng)
    assert np.array_equal(np.random.rand(3), expected[0])
    assert random.random() == expected[1]
    assert torch.equal(torch.rand(3), expected[2])
    assert loaded["step"] == 3 and torch.equal(loaded["best_state"]["w"], torch.ones(2))


def test_a_foreign_pickle_is_refused_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "payload-ran"
    torch.save({"step": 3, "rng": _CreatesFileWhenUnpickled(marker)}, tmp_path / "last.pt")
    with pytest.raises(SpecError, match="not allowed .refusing to unpickle: Unsupported global"
                       ) as refused:
        load_training_state(tmp_path / "last.pt")
    assert refused.value.source == str(tmp_path / "last.pt")
    assert not marker.exists()


@pytest.mark.parametrize(("content", "reason"), [
    (b"not a checkpoint", "refusing to unpickle"),
    (None, "it holds a list, not a dict"),
])
def test_other_files_are_refused_naming_the_file(
        tmp_path: Path, content: bytes | None, reason: str) -> None:
    path = tmp_path / "file.pt"
    if content is None:
        torch.save([1, 2], path)
    else:
        path.write_bytes(content)
    with pytest.raises(SpecError, match=reason) as refused:
        load_checkpoint_file(path)
    assert str(refused.value).startswith(f"{path}: not a dropout-lab checkpoint")


def test_a_checkpoint_without_a_needed_key_is_refused(tmp_path: Path) -> None:
    torch.save({"model": {}}, tmp_path / "best.pt")
    with pytest.raises(SpecError, match="it has no spec"):
        load_checkpoint_file(tmp_path / "best.pt", needs=("spec", "model"))


class _RunWithFile:
    """A tracker whose every run's ``checkpoint/last.pt`` is ``path``."""

    def __init__(self, path: Path):
        self.client = self
        self.path = path

    def download_artifacts(self, run_id: str, artifact: str, folder: str) -> str:
        return str(self.path)


def test_a_retried_trial_refuses_a_foreign_last_pt_and_starts_over(tmp_path: Path) -> None:
    marker = tmp_path / "payload-ran"
    last = tmp_path / "last.pt"
    torch.save({**training_state(), "rng": _CreatesFileWhenUnpickled(marker)}, last)
    study = optuna.create_study()
    study.add_trial(optuna.create_trial(state=optuna.trial.TrialState.FAIL,
                                        user_attrs={"mlflow_run_id": "dead"}))
    study.add_trial(optuna.create_trial(state=optuna.trial.TrialState.WAITING,
                                        system_attrs={"retry_history": [0]}))
    retry = study.ask()
    objective = Objective(None, _RunWithFile(last), "0", "parent")
    expected = re.escape(f"trial {retry.number} not resumed from {last}")
    with pytest.warns(UserWarning, match=expected):
        assert objective._resume_state(retry, tmp_path / "resume") is None
    assert "not allowed" in study.trials[retry.number].user_attrs["resume_refused"]
    assert not marker.exists()
