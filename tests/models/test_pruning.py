"""Keeping a subset of layers: selectors, search on valid, and pruned checkpoints that reload."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from framework.data.base import Batch
from framework.layers.layerdrop import LayerDropList
from framework.models import pruning
from framework.models.gpt import GPT
from framework.models.specs import GPTSpec


def gpt(n_layer: int) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTSpec(n_layer=n_layer, n_head=2, n_embd=16, block_size=8), {"vocab_size": 11})


def test_selectors_are_zero_based() -> None:
    assert pruning.every_other(6, 3) == [0, 2, 4]
    assert pruning.every_other(8, 4) == [0, 2, 4, 6]
    # the paper's rule at r = 1/3: drop 1-based depths 3 and 6, i.e. 0-based 2 and 5
    assert pruning.every_other(6, 4) == [0, 1, 3, 4]
    assert pruning.every_other(6, 6) == list(range(6))
    assert pruning.keep_first(6, 2) == [0, 1]
    assert pruning.keep_last(6, 2) == [4, 5]
    assert pruning.explicit(6, [4, 0]) == [0, 4]
    for bad in ([], [0, 0], [6], [-1]):
        with pytest.raises(ValueError):
            pruning.explicit(6, bad)
    with pytest.raises(ValueError, match="1..6"):
        pruning.every_other(6, 0)


def test_search_on_valid_removes_the_least_useful_layer_first() -> None:
    usefulness = [5.0, 1.0, 3.0, 0.5, 4.0]  # loss added by removing each layer
    calls = []

    def score(kept: list[int]) -> float:
        calls.append(kept)
        return sum(u for i, u in enumerate(usefulness) if i not in kept)

    found = pruning.search_on_valid(5, score)
    assert found[4] == [0, 1, 2, 4]
    assert found[3] == [0, 2, 4]
    assert found[2] == [0, 4]
    assert found[1] == [0]
    assert len(calls) == 5 + 4 + 3 + 2


def test_prune_state_dict_renumbers_layer_keys_only() -> None:
    state = {"layers.0.w": 0, "layers.1.w": 1, "layers.2.w": 2, "layers.2.b": 3, "ln_f.w": 4,
             "enc.layers.1.w": 5}
    assert pruning.prune_state_dict(state, [0, 2]) == {
        "layers.0.w": 0, "layers.1.w": 2, "layers.1.b": 3, "ln_f.w": 4}


def test_pruned_checkpoint_reloads_and_matches_the_unpruned_model_with_those_layers(
        tmp_path: Path) -> None:
    model = gpt(4)
    source, target = tmp_path / "best.pt", tmp_path / "pruned.pt"
    torch.save({"spec": {"model": model.spec.model_dump(mode="json")},
                "model": model.state_dict()}, source)
    pruning.prune_checkpoint(source, target, [3, 1], info={"vocab_size": 11})
    assert target.stat().st_size < 0.8 * source.stat().st_size
    reloaded = pruning.load_checkpoint(target)
    assert isinstance(reloaded, GPT) and reloaded.spec.n_layer == 2 and len(reloaded.layers) == 2
    assert type(reloaded.layers) is torch.nn.ModuleList

    # The unpruned model with layers 0 and 2 skipped: a stack whose rates are 1 there, 0 elsewhere
    # (dropout sites are at rate 0, so training mode is deterministic).
    model.layers = LayerDropList(model.layers, [1.0, 0.0, 1.0, 0.0])
    x = torch.randint(0, 11, (2, 8))
    b = Batch(x, torch.roll(x, -1, 1))
    with torch.no_grad():
        expected = model.train()(b)
        got = reloaded(b)
    assert model.layers.last_kept == [1, 3]
    assert torch.allclose(got.logits, expected.logits, atol=1e-6)
    assert got.loss.item() == pytest.approx(expected.loss.item(), abs=1e-6)


def test_keep_layers_copies_and_sets_the_depth() -> None:
    model = gpt(4)
    pruned = pruning.keep_layers(model, [0, 3])
    assert pruned.spec.n_layer == 2 and model.spec.n_layer == 4 and len(model.layers) == 4
    assert list(pruned.state_dict()) == list(gpt(2).state_dict())
    assert torch.equal(pruned.state_dict()["layers.1.mlp.fc.weight"],
                       model.state_dict()["layers.3.mlp.fc.weight"])


LEARNED = """
name: learned
seed: 0
model: {{name: mlp, hidden: [32, 32]}}
data: {{name: digits}}
train: {{max_steps: 30, batch_size: 32, lr: 1.0e-2, warmup_steps: 1, eval_every: 10,
         eval_batches: 2, measure_inference: false, checkpoints: false}}
dropout: [{strategy}]
"""


@pytest.mark.parametrize("strategy", [
    "{name: standout, alpha: 1.0, beta: 0.0, learn: true}",
    "{name: standout, form: belief}",
    "{name: concrete, sites: [hidden], p_init: 0.3}",
])
def test_a_checkpoint_with_learned_dropout_parameters_predicts_as_the_trained_model(
    tmp_path: Path, strategy: str,
) -> None:
    from framework.config import load_spec
    from framework.training.run import load_dataset
    from framework.training.run import run_training
    from tests.conftest import write_study

    spec = load_spec(write_study(tmp_path, LEARNED.format(strategy=strategy))).spec
    trained = run_training(spec, tmp_path).model.eval()
    loaded = pruning.load_checkpoint(tmp_path / "best.pt")
    # Every learned value (gate scales, belief weights, rates) comes back, and predicts alike.
    restored = loaded.state_dict()
    assert [name for name, value in trained.state_dict().items()
            if name not in restored or not torch.equal(value, restored[name])] == []
    batch = next(load_dataset(spec).eval_batches("val", 64, 1))
    with torch.no_grad():
        assert torch.allclose(loaded(batch).logits, trained(batch).logits, atol=1e-6)
