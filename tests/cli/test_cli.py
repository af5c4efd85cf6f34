"""The command line as a person uses it: real processes, exit codes, messages, side effects."""

from __future__ import annotations

from collections.abc import Iterator
import os
from pathlib import Path
import subprocess
import sys

import click
import pytest
from typer.testing import CliRunner

from tests.conftest import ROOT
from tests.conftest import TINY_STUDY
from tests.conftest import _app
from tests.conftest import invoke
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


def test_plugins_show_wraps_each_description_as_a_paragraph_under_its_field(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """At 80 columns a field's description reads as lines of prose below the field, not as a
    narrow table column of a word or two per line; its reStructuredText markup is gone."""
    from framework.cli.plugins import plain
    from plugins.standout import StandoutConfig

    monkeypatch.setenv("COLUMNS", "80")
    result = invoke("plugins", "show", "standout")
    assert result.exit_code == 0, result.output
    assert max(map(len, result.output.splitlines())) <= 80
    assert "``" not in result.output
    lines = [" ".join(line.split()) for line in result.output.splitlines()]
    described = [f.description for f in StandoutConfig.model_fields.values() if f.description]
    assert len(described) >= 5
    for text in map(plain, described):
        first = next((i for i, line in enumerate(lines) if line and text.startswith(line)), None)
        assert first is not None, f"no line begins {text[:40]!r}"
        shown: list[str] = []
        for line in lines[first:]:  # the paragraph's lines, in order
            shown.append(line)
            if " ".join(shown) == text:
                break
            assert text.startswith(" ".join(shown)), (text, shown)
        assert all(len(line.split()) > 1 for line in shown[:-1]), shown
        assert all(len(line) > 50 for line in shown[:-1]), shown  # the lines are filled


def test_the_help_of_every_command_is_plain_text() -> None:
    """Help comes from docstrings and option help, shown as they are: no reStructuredText."""
    import typer.main

    def paths(command: click.Command, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        yield path
        for name, sub in getattr(command, "commands", {}).items():
            yield from paths(sub, (*path, name))

    every = list(paths(typer.main.get_command(_app()), ()))
    assert ("confirm",) in every and ("plugins", "show") in every
    for path in every:
        result = CliRunner().invoke(_app(), [*path, "--help"], env={"COLUMNS": "100"})
        assert result.exit_code == 0, (path, result.output)
        assert "``" not in result.output, (path, result.output)


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
