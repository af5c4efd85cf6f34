"""The command line as a person uses it: real processes, exit codes, messages, side effects."""

from __future__ import annotations

import os
from pathlib import Path
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.conftest import TINY_STUDY
from tests.conftest import write_study


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run([sys.executable, "-m", "framework.cli", *args], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=120)


def test_validate_prints_the_resolved_spec(tmp_path: Path) -> None:
    result = cli("validate", str(ROOT / "studies" / "quickstart.yaml"), "train.max_steps=7",
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "max_steps: 7" in result.stdout
    assert "warmup_steps:" in result.stdout  # defaults are shown, resolved
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("command", "override", "key"),
    [
        ("validate", "dropout.0.p=1.5", "dropout[0].p"),
        ("run", "dropout.0.p=1.5", "dropout[0].p"),
        ("run", "dropout.0.name=gausian", "dropout[0]"),
        ("run", "search.space.dropout\\.0\\.p.low=0.9", "search.space['dropout.0.p']"),
        ("run", "train.batch_size=many", "train.batch_size"),
    ],
)
def test_bad_input_exits_2_names_the_key_and_creates_nothing(
    tmp_path: Path, command: str, override: str, key: str
) -> None:
    (tmp_path / "in").mkdir()
    study = write_study(tmp_path / "in", TINY_STUDY.format(name="tiny"))
    work = tmp_path / "work"
    work.mkdir()
    result = cli(command, str(study), override, cwd=work)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert str(study) in result.stderr and key in result.stderr
    assert list(work.iterdir()) == [], "nothing may be created on bad input"


def test_malformed_yaml_exits_2(tmp_path: Path) -> None:
    study = write_study(tmp_path, "name: x\nmodel: {name: gpt\n")
    result = cli("run", str(study), cwd=tmp_path)
    assert result.returncode == 2
    assert "not valid YAML" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "mlruns").exists()


def test_plugins_show_describes_the_schema(tmp_path: Path) -> None:
    result = cli("plugins", "show", "standard", cwd=tmp_path)
    assert result.returncode == 0
    assert "Probability of zeroing a unit" in result.stdout
    assert ">= 0.0, < 1.0" in result.stdout


def test_plugins_show_unknown_name_suggests(tmp_path: Path) -> None:
    result = cli("plugins", "show", "standrd", cwd=tmp_path)
    assert result.returncode == 2
    assert "did you mean 'standard'" in result.stderr


@pytest.mark.parametrize("command", ["compare", "worker"])
def test_commands_on_a_study_never_run_exit_2(tmp_path: Path, command: str) -> None:
    study = write_study(tmp_path, TINY_STUDY.format(name="never-run"))
    result = cli(command, str(study), cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "no study 'never-run'" in result.stderr and "dropout-lab run" in result.stderr
    assert not (tmp_path / "mlruns").exists()
