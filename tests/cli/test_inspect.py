"""``dropout-lab inspect`` shows what the study's strategies will touch in the model, and writes
nothing. (A model that cannot be adapted is refused like any bad input: ``tests/models/
test_adapter.py`` checks the key each error names.)"""

from __future__ import annotations

import os
from pathlib import Path
import subprocess
import sys

from tests.conftest import write_study


STUDY = """
name: own-model
model:
  name: module
  factory: {factory}
  kwargs: {{n_embd: 16, n_head: 2, n_layer: 2, p: 0.25}}
  sites: {{"blocks.*.mlp.*": residual}}
  layers: blocks
  block_size: 16
data: {{name: shakespeare_char}}
dropout:
  - {{name: linear_decay, p_start: 0.2, sites: [attention]}}
  - {{name: layerdrop, p: 0.1}}
"""


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run([sys.executable, "-m", "framework.cli", *args], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=300)


def test_inspect_lists_sites_kinds_rates_owners_and_the_stack(tmp_path: Path) -> None:
    path = write_study(tmp_path, STUDY.format(factory="framework.testing.modules:MiniGPT"))
    result = cli("inspect", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
            for line in result.stdout.splitlines() if line.count("│") == 7}
    assert rows["blocks.0.attn.attn_drop"] == ["attention", "nn.Dropout", "0.25", "0.2",
                                               "linear_decay"]
    assert rows["blocks.1.mlp.3"] == ["residual", "nn.Dropout", "0.25", "0.25", "-"]
    assert rows["emb_drop"][:2] == ["embedding", "nn.Dropout"]
    assert "blocks" in result.stdout and "LayerDrop, rates [0.1, 0.1]" in result.stdout
    assert list(tmp_path.iterdir()) == [path], "inspect writes nothing"



def test_inspect_shows_the_arm_that_is_named(tmp_path: Path, monkeypatch) -> None:
    from tests.conftest import TINY_STUDY
    from tests.conftest import invoke

    monkeypatch.setenv("COLUMNS", "200")  # one table row per line

    text = TINY_STUDY.format(name="armed") + (
        "arms:\n  plain: {dropout: [{name: none}], search: {space: {}}}\n"
        "  decayed: {dropout: [{name: linear_decay, p_start: 0.3, sites: [attention]}],\n"
        "            search: {space: {}}}\n")
    path = write_study(tmp_path, text)
    base = invoke("inspect", str(path))
    assert base.exit_code == 0, base.stderr
    assert "the study has arms (plain, decayed)" in base.stdout
    decayed = invoke("inspect", str(path), "--arm", "decayed")
    assert decayed.exit_code == 0, decayed.stderr
    owners = {line.split("│")[6].strip() for line in decayed.stdout.splitlines()
              if line.count("│") == 7 and "attention" in line}
    assert owners == {"linear_decay"}
    assert "the study has arms" not in decayed.stdout
    unknown = invoke("inspect", str(path), "--arm", "other")
    assert unknown.exit_code == 2 and "no such arm (arms: plain, decayed)" in unknown.stderr
    plain = write_study(tmp_path, TINY_STUDY.format(name="plain"), "plain.yaml")
    unarmed = invoke("inspect", str(plain), "--arm", "decayed")
    assert unarmed.exit_code == 2 and "--arm decayed: the study has no arms" in unarmed.stderr
