"""A newcomer's first hour: every command the README shows, in the README's order, in a new folder.

The commands are those of the README's ``bash`` blocks and its inline code spans that start with
``dropout-lab`` or ``.venv/bin/``. The ``dropout-lab`` commands that do not start a server run
in a folder holding a copy of ``studies/`` (so the home is the default ``mlruns`` there), the
quickstart made tiny by overrides: each must exit 0 and leave what the README says it leaves.
Servers (``ui``, ``dashboard``) are only asked for ``--help``; the set-up commands are checked
against pyproject.toml instead of run. A command this test does not know how to run fails it, so
the README cannot show a command that nothing checks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
import re
import shlex
import shutil
import sys
import tomllib
from typing import Any

from packaging.requirements import Requirement
import pytest

from tests.conftest import ROOT
from tests.conftest import invoke
from tests.test_readme import readme_snippets


VENV = ".venv/bin/"
TINY = ("train.max_steps=10", "train.eval_every=5", "train.eval_batches=2", "search.n_trials=2",
        "data.held_out_fraction=0.02")
"""Appended to every command that trains: 2 trials of 10 steps, a small held-out split."""
SMALL_CONFIRM = {"--top": "1", "--seeds": "2"}
PLACEHOLDERS = {"FILE": "studies/quickstart.yaml", "NAME": "standard"}
"""Words the README's prose uses for an argument; ``DIR`` is the confirmation's export."""
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


@dataclass(frozen=True)
class Command:
    argv: list[str]
    where: str
    """``README.md:LINE``, for the failure message."""


def readme_commands() -> list[Command]:
    """The shell commands of the README, in order (``a && b`` is two)."""
    commands = []
    for snippet in readme_snippets(inline=True):
        if snippet.language == "bash":
            # The fence is at ``snippet.line``; its content starts on the next line.
            lines = [(snippet.line + 1 + i, text)
                     for i, text in enumerate(snippet.text.splitlines())]
        elif snippet.language == "" and snippet.text.startswith((VENV, "dropout-lab ")):
            lines = [(snippet.line, snippet.text)]
        else:
            continue
        for number, text in lines:
            words = shlex.split(text, comments=True)
            while words:
                end = words.index("&&") if "&&" in words else len(words)
                commands.append(Command(words[:end], f"README.md:{number}"))
                words = words[end + 1:]
    return commands


class Newcomer:
    """Runs README commands in the current folder (a fresh one), remembering what they left."""

    def __init__(self) -> None:
        self.evidence: str | None = None
        """Where ``confirm`` exported its evidence (the README's ``DIR``)."""
        self.confirmed = ""
        """The best configuration's ``mean ± s.e.`` in the confirmation's table."""
        self.where = ""
        """The README line of the command being followed."""

    def follow(self, command: Command) -> None:
        self.where = command.where
        program, *args = command.argv
        steps: dict[str, Callable[[list[str]], None]] = {
            "python3": self.make_venv, "pip": self.install, "pytest": self.run_suite,
            "dropout-lab": self.dropout_lab}
        step = steps.get(program.removeprefix(VENV))
        assert step, (f"{self.where}: the README shows `{shlex.join(command.argv)}`, which "
                      "tests/test_newcomer.py does not know how to run")
        step([self.fill(word) for word in args])

    def fill(self, word: str) -> str:
        """The value a newcomer types for a placeholder of the README's prose."""
        if word == "DIR":
            assert self.evidence, f"{self.where}: `DIR` comes before any confirmation"
            return self.evidence
        if re.fullmatch(r"[A-Z]+", word):
            assert word in PLACEHOLDERS, f"{self.where}: unknown placeholder {word}"
            return PLACEHOLDERS[word]
        return word

    def make_venv(self, args: list[str]) -> None:
        assert args == ["-m", "venv", ".venv"], "the other commands run from .venv/bin/"
        assert (Path(sys.executable).parent / "dropout-lab").exists(), "the command is installed"

    def install(self, args: list[str]) -> None:
        """Extras must be the project's; a pinned package must satisfy the project's range."""
        assert args[0] == "install", args
        ranges = {Requirement(r).name: Requirement(r).specifier for r in PYPROJECT["dependencies"]}
        for word in (a for a in args[1:] if a != "-e"):
            if word.startswith(".["):
                extras = Requirement(f"project{word[1:]}").extras
                assert extras <= set(PYPROJECT["optional-dependencies"]), word
                continue
            pinned = Requirement(word)
            assert pinned.name in ranges, f"{word} is not a dependency of the project"
            version = next(iter(pinned.specifier)).version
            assert ranges[pinned.name].contains(version), f"{word} is outside {ranges[pinned.name]}"

    def run_suite(self, args: list[str]) -> None:
        assert args == [], "the README runs the whole suite, this test among it"

    def dropout_lab(self, args: list[str]) -> None:
        command, *rest = args
        steps: dict[str, Callable[[list[str]], None]] = {
            "run": self.run, "confirm": self.confirm, "report": self.report,
            "validate": self.writes_nothing, "inspect": self.writes_nothing,
            "verdict": self.verdict, "plugins": self.plugins, "ui": self.server,
            "dashboard": self.server}
        assert command in steps, (f"{self.where}: the README shows `dropout-lab "
                                  f"{shlex.join(args)}`, which tests/test_newcomer.py does not "
                                  "know how to run")
        steps[command]([command, *rest])

    def run(self, args: list[str]) -> None:
        """The study's trials run to its budget ("across invocations": again, none are added)."""
        import optuna

        from framework.tracking import Locations

        cli(*tiny(args))
        storage = Locations.resolve(Path("mlruns")).storage
        trials = optuna.load_study(study_name="quickstart", storage=storage).trials
        assert sum(t.state.is_finished() for t in trials) == 2

    def confirm(self, args: list[str]) -> None:
        """The best configuration and the baseline re-trained; the evidence exported."""
        small = [SMALL_CONFIRM.get(previous, word) for previous, word in zip(["", *args], args,
                                                                            strict=False)]
        output = cli(*tiny(small)).stdout
        top1 = re.search(r"^top1 +(\S+ ± \S+) .* paired", output, re.MULTILINE)
        assert top1, output
        self.confirmed = top1.group(1)
        assert re.search(r"^baseline .*\(the baseline\)", output, re.MULTILINE), output
        self.evidence = re.search(r"evidence written to (\S+)", output).group(1)
        assert (Path(self.evidence) / "confirmation.json").is_file()

    def report(self, args: list[str]) -> None:
        """"HTML page + PNGs"."""
        cli(*tiny(args))
        report = Path("mlruns", "reports", "quickstart")
        assert (report / "report.html").is_file()
        assert list((report / "figures").glob("*.png"))

    def writes_nothing(self, args: list[str]) -> None:
        before = sorted(Path().rglob("*"))
        assert "quickstart" in cli(*args).stdout
        assert sorted(Path().rglob("*")) == before

    def verdict(self, args: list[str]) -> None:
        """The confirmation's table, re-derived from the exported files."""
        assert self.confirmed
        output = cli(*args).stdout
        assert re.search(rf"^\| top1 \|.*\| {self.confirmed} \|", output, re.MULTILINE), output

    def plugins(self, args: list[str]) -> None:
        output = cli(*args).stdout
        if args[1] == "list":
            assert all(name in output for name in ("standard", "gpt", "shakespeare_char"))
        else:
            assert args[-1] in output

    def server(self, args: list[str]) -> None:
        assert "127.0.0.1" in cli(args[0], "--help").stdout


def tiny(args: list[str]) -> list[str]:
    """``args`` with the tiny overrides, which replace the README's of the same keys."""
    keys = {override.partition("=")[0] for override in TINY}
    return [a for a in args if a.partition("=")[0] not in keys] + list(TINY)


def cli(*args: str) -> Any:
    """``dropout-lab ARGS`` in this process; it must succeed."""
    result = invoke(*args)
    assert result.exit_code == 0, f"dropout-lab {shlex.join(args)}: {result.output}"
    return result


def test_readme_commands_are_found() -> None:
    """The extraction itself: the quickstart's commands are among those found, in order."""
    shown = [shlex.join(c.argv) for c in readme_commands()]
    run = shown.index(".venv/bin/dropout-lab run studies/quickstart.yaml")
    assert shown.index(".venv/bin/pytest") < run < shown.index(
        ".venv/bin/dropout-lab confirm studies/quickstart.yaml --top 3 --seeds 5")


@pytest.mark.slow
def test_a_newcomer_can_follow_the_readme(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "studies", tmp_path / "studies")  # the tests run in tmp_path
    newcomer = Newcomer()
    for command in readme_commands():
        newcomer.follow(command)
