"""``dropout-lab evaluate`` from a checkpoint alone, as the trial used the model for inference;
and ``--confirmed``, every confirmed checkpoint of a study scored against the baseline."""

from __future__ import annotations

from pathlib import Path
import shutil

import pytest
import torch

from framework import registry
from framework.config import load_spec
from framework.models.pruning import load_checkpoint
from framework.strategies.stack import StrategyStack
from framework.training.run import load_dataset
from framework.training.run import run_training
from framework.tuning.study import run_study
from tests.conftest import invoke
from tests.conftest import write_study
from tests.plugins.test_r_drop import labelled_file


STUDY = """
name: {name}
seed: 0
model: {{name: encoder, n_layer: 2, n_head: 2, n_embd: 16, block_size: 24}}
data: {{name: sst2, train_path: {path}, test_path: {path}, val_size: 8, min_count: 1}}
train: {{max_steps: 6, batch_size: 8, eval_every: 3, eval_batches: 2, warmup_steps: 1,
         measure_inference: false, checkpoints: false}}
dropout:
  - {{name: standard, p: 0.1}}
  - {strategy}
search:
  n_trials: 1
  sampler: {{name: random, seed: 0}}
  objectives: [{{metric: val_accuracy, direction: maximize}}]
"""


def scores(model: torch.nn.Module, dataset, path: Path) -> dict[str, float]:
    """Loss and accuracy over the examples of ``path``, as ``evaluate`` computes them."""
    loss, correct, n = 0.0, 0.0, 0
    with torch.no_grad():
        for batch in dataset.labelled_batches(path, 64):
            out = model.eval()(batch)
            loss += out.loss.item() * len(batch.targets)
            correct += (out.logits.argmax(-1) == batch.targets).sum().item()
            n += len(batch.targets)
    return {"loss": loss / n, "accuracy": correct / n}


def printed(stdout: str) -> dict[str, float]:
    return {k: float(v) for k, v in (line.split(": ") for line in stdout.strip().splitlines())}


def test_a_checkpoint_alone_scores_with_the_inference_transform(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "other").mkdir()
    train = Path(labelled_file(tmp_path / "data", n=48))
    heldout = Path(labelled_file(tmp_path / "other", n=24))
    # LayerDrop's inference transform prunes the 2-layer model to 1 layer.
    study = write_study(tmp_path, STUDY.format(
        name="alone", path=train, strategy="{name: layerdrop, p: 0.5, inference_depth: 1}"))
    spec = load_spec(study).spec
    (tmp_path / "artifacts").mkdir()
    result = run_training(spec, tmp_path / "artifacts")
    dataset = load_dataset(spec)
    expected = scores(result.model, dataset, heldout)
    assert len(result.model.layers) == 1
    full = registry.create_model(spec.model, dataset.info)
    StrategyStack.from_configs(spec.dropout).attach(full, dataset.info)
    full.load_state_dict(result.best_state)
    assert scores(full, dataset, heldout)["loss"] != pytest.approx(expected["loss"], rel=1e-6)

    # Another machine: the checkpoint and the file to score, no training or dev data.
    checkpoint = tmp_path / "elsewhere" / "best.pt"
    checkpoint.parent.mkdir()
    shutil.move(tmp_path / "artifacts" / "best.pt", checkpoint)
    shutil.rmtree(tmp_path / "data")
    assert len(load_checkpoint(checkpoint).layers) == 1
    out = invoke("evaluate", str(heldout), "--checkpoint", str(checkpoint), "--batch-size", "5")
    assert out.exit_code == 0, out.stderr
    got = printed(out.stdout)
    assert got["examples"] == 24
    assert got["loss"] == pytest.approx(expected["loss"], rel=1e-5)
    assert got["accuracy"] == pytest.approx(expected["accuracy"], abs=1e-9)


@pytest.mark.slow
def test_every_confirmed_checkpoint_scores_against_the_baseline(tmp_path: Path, locations
                                                                ) -> None:
    train = labelled_file(tmp_path, n=48)
    study = write_study(tmp_path, STUDY.format(
        name="confirmed", path=train, strategy="{name: r_drop, alpha: 1.0}")
        + "confirm: {baseline: {dropout: [{name: standard, p: 0.1}]},\n"
          "          metrics: [{metric: train_time, direction: minimize}]}\n")
    run_study(load_spec(study), locations)
    home = Path(locations.storage.removeprefix("sqlite:///")).parent
    table = tmp_path / "pages" / "confirm.md"
    out = invoke("confirm", str(study), "--top", "1", "--seeds", "2", "--home", str(home),
                 "--markdown", str(table))
    assert out.exit_code == 0, out.stderr
    # The objective and the further metric, each with its CI and its difference to the baseline.
    text = table.read_text()
    assert text == (home / "reports" / "confirmed-confirm.md").read_text()
    assert "val_accuracy mean ± s.e." in text and "Δ train_time vs baseline" in text
    rows = [line for line in text.splitlines() if line.startswith(("| top1", "| baseline"))]
    assert len(rows) == 2 and "paired t" in rows[0]

    heldout = labelled_file(tmp_path / "pages", n=24)
    scored = tmp_path / "pages" / "heldout.md"
    out = invoke("evaluate", heldout, "--study", str(study), "--confirmed", "--home", str(home),
                 "--markdown", str(scored))
    assert out.exit_code == 0, out.stderr
    lines = scored.read_text().splitlines()
    assert "seeds [1000, 1001]" in lines[0]
    top1 = next(line for line in lines if line.startswith("| top1 | 2 |"))
    assert "paired t" in top1
    assert next(line for line in lines if line.startswith("| baseline (baseline) | 2 |"))
    out = invoke("evaluate", heldout, "--study", str(study), "--home", str(home))
    assert out.exit_code == 2 and "--confirmed" in out.stderr
