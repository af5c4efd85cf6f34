"""Input that can only fail is refused before anything exists: one line, exit 2, no traceback.

Each case runs ``dropout-lab run`` as a person would, with ``--home`` in a fresh folder, and checks
the message names the file and the key, and that neither the home nor anything else was created.
"""

from __future__ import annotations

from collections.abc import Callable
import os
from pathlib import Path
import subprocess
import sys

import pytest

from framework.config.limits import MAX_STEPS
from framework.data.mnist import write_idx
from framework.errors import SpecError
from tests.conftest import TINY_STUDY
from tests.conftest import invoke
from tests.conftest import write_study


MNIST_STUDY = """
name: digits-from-a-folder
model: {{name: mlp, hidden: [8]}}
data: {{name: mnist, path: {path}}}
train: {{max_steps: 2, batch_size: 4, eval_every: 2, eval_batches: 1, warmup_steps: 0}}
"""

DUPLICATE_PLUGIN = '''
from typing import Literal

from framework.config.base import Section
from framework.registry import strategies


class Mine(Section):
    name: Literal["standard"] = "standard"


strategies.add("standard", config=Mine, target="mine:Mine")
'''


def run_refused(tmp_path: Path, study: Path, *overrides: str, source: str | None = None,
                home: Path | None = None) -> str:
    """``run`` the study; assert the refusal contract and return stderr.

    Args:
        source: what the error names first; default: the study file.
        home: ``--home``; default: a folder that must not be created.
    """
    fresh_home = home is None
    home = tmp_path / "home" if home is None else home
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "COLUMNS": "300"}
    env.pop("MLFLOW_TRACKING_URI", None)
    result = subprocess.run(
        [sys.executable, "-m", "framework.cli", "run", str(study), *overrides,
         "--home", str(home)],
        cwd=work, capture_output=True, text=True, env=env, timeout=120,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: {source or study}: "), result.stderr
    assert list(work.iterdir()) == [], "nothing may be created"
    assert not fresh_home or not home.exists(), "nothing may be created"
    return result.stderr


def tiny(tmp_path: Path) -> Path:
    (tmp_path / "in").mkdir(exist_ok=True)
    return write_study(tmp_path / "in", TINY_STUDY.format(name="tiny"))


@pytest.mark.parametrize(
    ("override", "key", "fragment"),
    [
        ("train.lr=.inf", "train.lr", "inf is not a finite number"),
        ("train.lr=inf", "train.lr", "not a finite number"),  # a string pydantic reads as inf
        ("search.space.dropout\\.0\\.p.high=.nan", "search.space['dropout.0.p'].high",
         "nan is not a finite number"),
        ("data.path=missing.txt", "data.path", "missing.txt does not exist"),
        ("model.block_size=200000", "model.block_size",
         "the val and test splits of the bundled Tiny Shakespeare have 11,154 and 11,154 "
         "characters"),
        ("model.n_embd=1000000", "model", "12,000,081,000,000 parameters"),
        ("train.batch_size=100000000", "train.batch_size", "activations of a batch"),
        ("search.space.model\\.n_embd={type: int, low: 16, high: 2000000, step: 16}",
         "search.space['model.n_embd'] = 2000000", "more than this machine's"),
        # The test split is out of reach of everything that chooses; claims are judged on it.
        ("search.objectives=[{metric: test_loss}]", "search.objectives[0].metric",
         "'test_loss' is scored on the test split, which nothing that chooses may see"),
        ("dropout=[{name: val_loss_adaptive, metric: test_loss}]", "dropout[0].metric",
         "scored on the test split"),
        ("claims=[{id: c, text: t, candidate: top1, metric: val_loss, direction: lower}]",
         "claims[0].metric", "measured on the validation split, which the search and the best "
         "checkpoint were chosen on; judge the claim on the test split (e.g. test_loss)"),
        ("claims=[{id: c, text: t, candidate: top4, metric: test_loss, direction: lower}]",
         "claims[0].candidate", "'top4' is not confirmed: confirm.top is 3"),
        ("claims=[{id: c, text: t, candidate: fast, metric: test_loss, direction: lower}]",
         "claims[0].candidate", "'fast' is neither an arm nor a configuration label"),
        ("claims=[{id: c, text: t, candidate: top1, metric: test_bleu, direction: lower}]",
         "claims[0].metric", "claim metric 'test_bleu' is not reported by this study"),
        ("claims=[{id: c, text: t, candidate: top1, metric: test_loss, direction: lower},"
         "{id: c, text: u, candidate: top2, metric: test_loss, direction: lower}]",
         "claims[1].id", "claim id 'c' is used twice"),
        ("search.space.dropout\\.0\\.p.type=flaot", "search.space['dropout.0.p']",
         "unknown parameter type 'flaot'; known: float, int, categorical, choice; "
         "did you mean 'float'?"),
    ],
)
def test_what_would_fail_every_trial_is_refused_at_validation(
    tmp_path: Path, override: str, key: str, fragment: str
) -> None:
    err = run_refused(tmp_path, tiny(tmp_path), override)
    assert f": {key}: " in err and fragment in err, err


def test_a_block_longer_than_a_given_files_split_is_refused(tmp_path: Path) -> None:
    text = tmp_path / "in" / "short.txt"
    text.parent.mkdir()
    text.write_text("to be or not to be " * 30)  # 570 characters: 57 held out, 28 for val
    study = write_study(tmp_path / "in", TINY_STUDY.format(name="tiny"))
    err = run_refused(tmp_path, study, f"data.path={text}", "data.held_out_fraction=0.1",
                      "model.block_size=64")
    assert ": model.block_size: the val and test splits of " in err
    assert "have 28 and 29 characters" in err


def test_mnist_with_a_path_names_the_missing_files_and_downloads_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "in" / "mnist"
    folder.mkdir(parents=True)
    write_idx(folder / "train-images-idx3-ubyte.gz", [[[0] * 28] * 28])
    write_idx(folder / "train-labels-idx1-ubyte", [0])
    study = write_study(tmp_path / "in", MNIST_STUDY.format(path=folder))
    err = run_refused(tmp_path, study)
    assert ": data.path: MNIST files missing from " in err
    assert "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte" in err
    assert "train-images" not in err.split("missing from")[1].split("(")[0]
    assert sorted(p.name for p in folder.iterdir()) == [
        "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte"], "nothing downloaded there"


def _not_python(folder: Path) -> str:
    notes = folder / "notes.txt"
    notes.write_text("root:x:0:0:root:/root:/bin/bash\n")
    return str(notes)


def _duplicate(folder: Path) -> str:
    plugin = folder / "mine.py"
    plugin.write_text(DUPLICATE_PLUGIN)
    return str(plugin)


def _exits(folder: Path) -> str:
    plugin = folder / "quits.py"
    plugin.write_text("import sys\n\nsys.exit(0)\n")
    return str(plugin)


@pytest.mark.parametrize(
    ("make_plugin", "fragment"),
    [
        (_not_python, "is not a .py file or a folder of them"),
        (_duplicate, "strategy 'standard' is already registered (from builtin)"),
        (_exits, "it called sys.exit(0) while being imported"),
    ],
    ids=["not-python", "duplicate-builtin-name", "sys-exit"],
)
def test_a_bad_plugin_is_refused_naming_its_file(
    tmp_path: Path, make_plugin: Callable[[Path], str], fragment: str
) -> None:
    study = tiny(tmp_path)
    plugin = make_plugin(study.parent)
    with study.open("a") as f:
        f.write(f"plugins: [{plugin}]\n")
    err = run_refused(tmp_path, study)
    assert ": plugins[0]: " in err and fragment in err, err
    if plugin.endswith(".py"):
        assert f"plugin file {plugin}" in err


def test_a_binary_file_as_the_study_is_refused(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    study = tmp_path / "in" / "model.pt"
    study.write_bytes(bytes(range(128, 256)) * 8)
    err = run_refused(tmp_path, study)
    assert "not a UTF-8 text file" in err


def test_a_huge_study_file_is_refused_for_its_size_not_for_aliases(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    study = tmp_path / "in" / "huge.yaml"
    line = "  - {a: 1, b: [1, 2, 3]}\n"
    study.write_text("name: huge\nrows:\n" + line * (7_000_000 // len(line)))
    err = run_refused(tmp_path, study)
    assert "6.7 MiB; a study file may be at most 1 MiB" in err
    assert "alias" not in err


def test_an_ordinary_file_with_many_nodes_is_read(tmp_path: Path) -> None:
    """Over OmegaConf's default limit of 10,000 nodes, without a single alias."""
    (tmp_path / "in").mkdir()
    rows = "".join(f"  k{i}: [{i}, {i + 1}]\n" for i in range(3000))  # 12,000 nodes
    study = write_study(tmp_path / "in", TINY_STUDY.format(name="tiny") + "extra:\n" + rows)
    err = run_refused(tmp_path, study)
    assert ": extra: unknown key" in err and "alias" not in err


def test_a_study_file_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    study = write_study(tmp_path / "in", "42\n")
    err = run_refused(tmp_path, study)
    assert err == (f"error: {study}: a study file is a YAML mapping (name:, model:, ...); this "
                   "one is an int\n")


def test_a_folder_as_the_study_is_refused_naming_its_study_files(tmp_path: Path) -> None:
    study = tiny(tmp_path).parent
    err = run_refused(tmp_path, study)
    assert err == (f"error: {study}: a directory, not a study file; the study files in it: "
                   "study.yaml\n")


@pytest.mark.parametrize("where", ["a-file", "under-a-file"])
def test_a_home_that_cannot_be_a_folder_is_refused(tmp_path: Path, where: str) -> None:
    study = tiny(tmp_path)
    blocker = tmp_path / "in" / "stores"
    blocker.write_text("a file where the stores would go")
    home = blocker if where == "a-file" else blocker / "mlruns"
    err = run_refused(tmp_path, study, source="--home", home=home)
    assert err.count("\n") == 1 and f"{blocker} is a file" in err
    assert blocker.read_text() == "a file where the stores would go"
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == ["stores", "study.yaml"]


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_a_home_where_no_folder_can_be_made_is_refused_naming_home() -> None:
    """/proc takes no folders (mkdir says the path does not exist); the check comes when the
    stores are made, after the spec's and before anything else is created."""
    from framework.tracking import Locations

    home = Path("/proc/dropout-lab-home")
    with pytest.raises(SpecError) as info:
        Locations.resolve(home).prepare()
    assert str(info.value) == f"--home: cannot create the folder {home}: No such file or directory"


def test_yes_lifts_the_step_bound(tmp_path: Path) -> None:
    """Past the bound with ``--yes``, ``run`` goes on to its next check (a bad ``--gpus``)."""
    err = run_refused(tmp_path, tiny(tmp_path), f"train.max_steps={MAX_STEPS + 1}", "--yes",
                      "--gpus", "x!", source="--gpus")
    assert err.count("\n") == 1 and "max_steps" not in err


def test_a_training_beyond_the_step_bound_needs_yes(tmp_path: Path) -> None:
    study = tiny(tmp_path)
    err = run_refused(tmp_path, study, "train.max_steps=1000000000000")
    assert err.count("\n") == 1
    assert f"{study}: train.max_steps: 1,000,000,000,000 steps is more than " in err
    assert "pass --yes to `dropout-lab run`" in err


def test_run_help_states_the_step_bound_that_yes_lifts() -> None:
    result = invoke("run", "--help")
    assert result.exit_code == 0
    assert "--yes" in result.stdout and f"{MAX_STEPS:,} steps" in result.stdout


@pytest.mark.parametrize(
    ("overrides", "message"),
    [(["train.lr=1", "train.lr=2"], "train.lr given twice (also as 'train.lr=1')"),
     (["search.space.dropout.0.p.high=0.2"],
      "a key with dots goes in brackets, e.g. 'search.space[dropout.0.p].high=0.2'")],
    ids=["twice", "dotted-space-key"],
)
def test_an_override_that_cannot_be_meant_is_refused(tmp_path: Path, overrides: list[str],
                                                     message: str) -> None:
    err = run_refused(tmp_path, tiny(tmp_path), *overrides, source="command line")
    assert err.count("\n") == 1
    assert f": override {overrides[-1]!r}: " in err and message in err, err
