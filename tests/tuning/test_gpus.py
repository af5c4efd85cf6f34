"""``--workers N`` gives each local worker (and each copy of ``run`` or ``confirm``) its own GPU
(``CUDA_VISIBLE_DEVICES``), on a faked device list: the processes are recorded, not started."""

from __future__ import annotations

from pathlib import Path
import subprocess
from typing import Any

import pytest
import torch

from framework.config import load_spec
from framework.tuning.workers import COPY_ENV
from framework.tuning.workers import CUDA_VISIBLE
from framework.tuning.workers import STORAGE_ENV
from framework.tuning.workers import TRACKING_ENV
from framework.tuning.workers import run_copies
from framework.tuning.workers import run_workers
from framework.tuning.workers import worker_gpus
from tests.conftest import invoke


class Recorded:
    """Stands in for ``subprocess.Popen``: keeps the command and environment, exits 0."""

    started: list[Recorded] = []

    def __init__(self, args: list[str], env: dict[str, str] | None = None, **_: Any):
        self.args, self.env = args, env or {}
        Recorded.started.append(self)

    def wait(self) -> int:
        return 0

    def poll(self) -> int:
        return 0


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[Recorded]:
    Recorded.started = []
    monkeypatch.setattr(subprocess, "Popen", Recorded)
    return Recorded.started


@pytest.fixture
def four_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine whose torch sees four CUDA devices, with CUDA_VISIBLE_DEVICES unset."""
    monkeypatch.delenv(CUDA_VISIBLE, raising=False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)


def option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_each_worker_gets_its_own_gpu_and_its_threads(tiny_study: Path, locations,
                                                      four_gpus: None,
                                                      recorded: list[Recorded]) -> None:
    loaded = load_spec(tiny_study, ["train.threads=3"])
    assert run_workers(loaded, locations, "parent", 3) == []
    assert [r.env[CUDA_VISIBLE] for r in recorded] == ["0", "1", "2"]
    assert [option(r.args, "--worker-index") for r in recorded] == ["0", "1", "2"]
    assert {option(r.args, "--threads") for r in recorded} == {"3"}


def test_gpus_chosen_on_the_command_line_are_dealt_in_turn(tiny_study: Path, locations,
                                                           four_gpus: None,
                                                           recorded: list[Recorded]) -> None:
    run_workers(load_spec(tiny_study), locations, "parent", 3, gpus=["3", "GPU-5a1b"])
    assert [r.env[CUDA_VISIBLE] for r in recorded] == ["3", "GPU-5a1b", "3"]


def test_the_visible_devices_are_the_ones_shared_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv(CUDA_VISIBLE, "6,2")
    assert worker_gpus(3) == ["6", "2", "6"]
    monkeypatch.setenv(CUDA_VISIBLE, "4,-1,5")  # CUDA ignores everything from "-1" on
    assert worker_gpus(2) == ["4", "4"]
    monkeypatch.setenv(CUDA_VISIBLE, "")
    assert worker_gpus(2) == [None, None]


def test_without_gpus_the_workers_environment_is_left_alone(
    tiny_study: Path, locations, monkeypatch: pytest.MonkeyPatch, recorded: list[Recorded]
) -> None:
    monkeypatch.delenv(CUDA_VISIBLE, raising=False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    run_workers(load_spec(tiny_study), locations, "parent", 2)
    assert len(recorded) == 2 and all(CUDA_VISIBLE not in r.env for r in recorded)


@pytest.mark.parametrize("gpus", ["", "0,,1", "0,gpu one"])
def test_a_bad_gpu_list_exits_2_naming_the_option(tiny_study: Path, tmp_path: Path,
                                                  gpus: str) -> None:
    home = tmp_path / "mlruns"
    result = invoke("run", str(tiny_study), "--workers", "2", "--gpus", gpus, "--home", str(home))
    assert result.exit_code == 2
    assert "--gpus" in result.stderr and "Traceback" not in result.stderr
    assert not home.exists(), "nothing may be created on bad input"


def test_copies_of_a_command_get_a_gpu_their_threads_and_only_the_urls_given(
    tiny_study: Path, tmp_path: Path, four_gpus: None, recorded: list[Recorded]
) -> None:
    loaded = load_spec(tiny_study, ["train.max_steps=4"])
    home = tmp_path / "stores"
    assert run_copies("confirm", loaded, home, 2, options=["--seeds", "3"]) == []
    assert [r.env[CUDA_VISIBLE] for r in recorded] == ["0", "1"]
    for copy in recorded:
        assert copy.args[3:6] == ["confirm", str(tiny_study), "train.max_steps=4"]
        threads = [a for a in copy.args if a.startswith("train.threads=")]
        assert len(threads) == 1 and int(threads[0].split("=")[1]) >= 1
        assert option(copy.args, "--home") == str(home)
        assert option(copy.args, "--seeds") == "3"
        assert copy.env[COPY_ENV] == "1"
        # The copies resolve the default stores from --home, as their starter did.
        assert STORAGE_ENV not in copy.env and TRACKING_ENV not in copy.env
    recorded.clear()
    run_copies("run", load_spec(tiny_study, ["train.threads=3"]), home, 2,
               storage="postgresql://u:secret@db/x")
    for copy in recorded:  # the spec's own count stays; the URL travels out of sight
        assert [a for a in copy.args if a.startswith("train.threads=")] == ["train.threads=3"]
        assert copy.env[STORAGE_ENV] == "postgresql://u:secret@db/x"
        assert not any("secret" in a for a in copy.args)
