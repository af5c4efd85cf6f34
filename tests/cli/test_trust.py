"""Checkpoint files are data, not code: a foreign pickle given to ``prune`` or ``evaluate
--checkpoint`` is refused in one line (status 2) and what it would run never runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from framework.models import pruning
from framework.models.gpt import GPT
from framework.models.specs import GPTSpec
from tests.conftest import invoke


class _CreatesFileWhenUnpickled:
    """Unpickling this calls ``open(marker, "w")``: the file appears only if the payload ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (open, (str(self.marker), "w"))


def foreign_checkpoint(folder: Path) -> tuple[Path, Path]:
    """A ``best.pt``-shaped file whose spec is a payload; returns it and the payload's marker."""
    marker = folder / "payload-ran"
    path = folder / "evil.pt"
    torch.save({"spec": _CreatesFileWhenUnpickled(marker), "model": {}}, path)
    return path, marker


@pytest.mark.parametrize("command", [
    ["prune", "{evil}", "{out}", "--depth", "1"],
    ["prune", "{evil}", "{out}", "--layers", "0"],
    ["evaluate", "{labelled}", "--checkpoint", "{evil}"],
])
def test_a_foreign_pickle_is_refused_in_one_line_without_running(
        tmp_path: Path, command: list[str]) -> None:
    evil, marker = foreign_checkpoint(tmp_path)
    out = tmp_path / "out.pt"
    labelled = tmp_path / "labelled.tsv"
    labelled.write_text("a fine film\t1\n")
    args = [part.format(evil=evil, out=out, labelled=labelled) for part in command]
    result = invoke(*args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(evil) in lines[0] and "not allowed" in lines[0]
    assert "Traceback" not in result.output
    assert not marker.exists()
    assert not out.exists()


def test_prune_still_writes_a_smaller_copy_of_a_real_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = GPT(GPTSpec(n_layer=3, n_head=2, n_embd=16, block_size=8), {"vocab_size": 11})
    source, target = tmp_path / "best.pt", tmp_path / "pruned.pt"
    torch.save({"spec": {"model": model.spec.model_dump(mode="json")},
                "model": model.state_dict(), "info": {"vocab_size": 11}}, source)
    result = invoke("prune", str(source), str(target), "--depth", "2")
    assert result.exit_code == 0, result.output
    assert "kept layers [0, 1] of 3" in result.stdout
    assert pruning.load_checkpoint(target).spec.n_layer == 2


@pytest.mark.parametrize("spec", [{"model": {}}, {"model": {"name": "no_such_model"}}])
def test_prune_refuses_plain_data_that_describes_no_model_in_one_line(
        tmp_path: Path, spec: dict) -> None:
    source, out = tmp_path / "odd.pt", tmp_path / "out.pt"
    torch.save({"spec": spec, "model": {}}, source)
    result = invoke("prune", str(source), str(out), "--depth", "1")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(source) in lines[0], result.stderr
    assert not out.exists()
