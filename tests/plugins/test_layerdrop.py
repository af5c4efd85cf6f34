"""LayerDrop (Fan et al. 2020): which layers run in training, gradients, and the depth sweep."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from framework.data.base import Batch
from framework.layers.layerdrop import LayerDropList
from framework.layers.layerdrop import layer_rates
from framework.models.gpt import GPT
from framework.models.pruning import keep_layers
from framework.models.pruning import load_checkpoint
from framework.models.specs import GPTSpec
from framework.strategies.base import TrainedModel
from plugins.layerdrop import LayerDrop
from plugins.layerdrop import LayerDropConfig


def gpt(n_layer: int = 4) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTSpec(n_layer=n_layer, n_head=2, n_embd=16, block_size=8), {"vocab_size": 11})


def batch(seed: int = 1) -> Batch:
    x = torch.randint(0, 11, (3, 8), generator=torch.Generator().manual_seed(seed))
    return Batch(x, torch.roll(x, -1, 1))


def count_calls(model: GPT) -> list[int]:
    """Forward calls of each layer, updated in place."""
    calls = [0] * len(model.layers)
    for i, layer in enumerate(model.layers):
        layer.register_forward_pre_hook(lambda m, a, i=i: calls.__setitem__(i, calls[i] + 1))
    return calls


def test_p0_runs_every_layer_and_matches_the_plain_model() -> None:
    plain = gpt()
    model = gpt()
    LayerDrop(LayerDropConfig(p=0.0)).attach(model)
    calls = count_calls(model)
    rng = torch.get_rng_state()
    out = model.train()(batch())
    assert calls == [1, 1, 1, 1]
    assert torch.equal(torch.get_rng_state(), rng), "p = 0 must not draw random numbers"
    assert torch.equal(out.logits, plain.train()(batch()).logits)


def test_p1_in_training_runs_no_layer_and_gives_the_embedding_path() -> None:
    model = gpt()
    LayerDrop(LayerDropConfig(p=1.0)).attach(model)
    calls = count_calls(model)
    b = batch()
    out = model.train()(b)
    assert calls == [0, 0, 0, 0]
    positions = torch.arange(8)
    embedding_path = model.lm_head(model.ln_f(model.tok_emb(b.inputs) + model.pos_emb(positions)))
    assert torch.allclose(out.logits, embedding_path)
    model.eval()(b)  # LayerDrop is off at inference: every layer runs
    assert calls == [1, 1, 1, 1]


def test_skip_pattern_is_reproducible_under_a_seed_and_drops_at_rate_p() -> None:
    def patterns(seed: int, n: int = 2000) -> list[list[int]]:
        stack = LayerDropList([nn.Identity() for _ in range(6)], layer_rates(6, 0.5)).train()
        torch.manual_seed(seed)
        found = []
        for _ in range(n):
            list(stack)  # one draw per layer per iteration, as in a forward pass
            found.append(stack.last_kept)
        return found

    first = patterns(3)
    assert first == patterns(3)
    assert first != patterns(4)
    kept = sum(len(p) for p in first) / (6 * len(first))
    assert kept == pytest.approx(0.5, abs=0.02)

    def model_patterns(seed: int) -> list[list[int]]:
        model = gpt(6)
        LayerDrop(LayerDropConfig(p=0.5)).attach(model)
        torch.manual_seed(seed)
        found = []
        with torch.no_grad():
            for _ in range(4):
                model.train()(batch())
                found.append(model.layers.last_kept)
        return found

    assert model_patterns(5) == model_patterns(5)


def test_skipped_layers_get_no_gradient_and_kept_layers_do() -> None:
    model = gpt(6)
    LayerDrop(LayerDropConfig(p=0.5)).attach(model)
    torch.manual_seed(0)
    for _ in range(20):  # find a draw that skips some layers and keeps others
        model.zero_grad(set_to_none=True)
        model.train()(batch()).loss.backward()
        kept = model.layers.last_kept
        if 0 < len(kept) < 6:
            break
    assert 0 < len(kept) < 6
    for i, layer in enumerate(model.layers._modules.values()):
        grads = [p.grad for p in layer.parameters()]
        if i in kept:
            assert all(g is not None and g.abs().sum() > 0 for g in grads)
        else:
            assert all(g is None for g in grads)


def test_linear_profile_rises_with_depth_to_p() -> None:
    assert layer_rates(4, 0.4, "linear") == pytest.approx([0.1, 0.2, 0.3, 0.4])
    assert layer_rates(3, 0.2) == [0.2, 0.2, 0.2]
    model = gpt()
    LayerDrop(LayerDropConfig(p=0.4, profile="linear")).attach(model)
    assert model.layers.rates == pytest.approx([0.1, 0.2, 0.3, 0.4])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        layer_rates(2, 1.5)


def test_walking_the_stack_outside_a_forward_sees_every_layer() -> None:
    model = gpt()
    LayerDrop(LayerDropConfig(p=1.0)).attach(model)
    assert len(list(model.train().layers)) == 4  # e.g. another strategy's attach
    standalone = LayerDropList([nn.Identity(), nn.Identity()], [1.0, 0.0]).train()
    assert len(list(standalone)) == 1  # unbound: every training iteration draws


def test_state_dict_keys_stay_those_of_the_plain_model() -> None:
    model = gpt()
    LayerDrop(LayerDropConfig(p=0.3)).attach(model)
    plain = gpt()
    assert list(model.state_dict()) == list(plain.state_dict())
    plain.load_state_dict(model.state_dict())


def test_a_second_layer_stack_strategy_is_refused() -> None:
    model = gpt()
    LayerDrop(LayerDropConfig()).attach(model)
    with pytest.raises(TypeError, match="plain nn.ModuleList"):
        LayerDrop(LayerDropConfig()).attach(model)


def test_for_inference_keeps_the_configured_layers() -> None:
    model = gpt(6)
    strategy = LayerDrop(LayerDropConfig(p=0.2, inference_depth=3))
    strategy.attach(model)
    pruned = strategy.for_inference(model)
    assert len(pruned.layers) == 3 and pruned.spec.n_layer == 3
    assert pruned.layers[1] is not model.layers[2]  # a copy: the trained model is untouched
    assert torch.equal(pruned.layers[1].attn.qkv.weight, model.layers[2].attn.qkv.weight)
    explicit = LayerDrop(LayerDropConfig(inference_layers=[5, 1]))
    assert explicit.inference_layers(6) == [1, 5]
    assert LayerDrop(LayerDropConfig()).for_inference(model) is model
    with pytest.raises(ValueError, match="not both"):
        LayerDropConfig(inference_depth=2, inference_layers=[0])


def test_after_training_sweeps_every_depth_and_writes_table_and_plot(tmp_path: Path) -> None:
    model = gpt(3)
    strategy = LayerDrop(LayerDropConfig(p=0.2, sweep=["every_other", "search"],
                                         throughput_repeats=1, inference_depth=2))
    strategy.attach(model)
    b = batch(2)
    torch.save({"spec": {"model": model.spec.model_dump(mode="json")},
                "model": model.state_dict()}, tmp_path / "best.pt")

    def evaluate(m: nn.Module) -> dict[str, float]:
        with torch.no_grad():
            return {"val_loss": m.eval()(b).loss.item()}

    metrics = strategy.after_training(TrainedModel(model, evaluate, tmp_path))
    for depth in range(1, 4):
        assert metrics[f"val_loss_depth_{depth}"] == pytest.approx(
            evaluate(keep_layers(model, [i * 3 // depth for i in range(depth)]))["val_loss"])
    assert metrics["val_loss_half_depth"] == metrics["val_loss_depth_1"]
    assert metrics["val_loss_depth_3"] == pytest.approx(evaluate(model)["val_loss"])
    assert metrics["half_depth_speedup"] > 0
    rows = (tmp_path / "depth_sweep.csv").read_text().splitlines()
    assert rows[0] == "selector,depth,layers_kept,val_loss,tokens_per_sec"
    assert len(rows) == 1 + 2 * 3
    assert rows[2].startswith("every_other,2,0 1,")
    assert (tmp_path / "depth_sweep.png").stat().st_size > 1000
    assert "| search | 1 |" in (tmp_path / "depth_sweep.md").read_text()
    pruned = load_checkpoint(tmp_path / "pruned.pt", info={"vocab_size": 11})
    assert pruned.spec.n_layer == 2
    assert pruned(b).loss.item() == pytest.approx(metrics["val_loss_depth_2"], abs=1e-6)


def lstm_lm(n_layer: int = 3, width: int = 16):
    from framework.models.lstm_lm import LSTMLM
    from framework.models.specs import LSTMLMSpec

    torch.manual_seed(0)
    spec = LSTMLMSpec(n_layer=n_layer, n_embd=width, n_hidden=width, block_size=8)
    return LSTMLM(spec, {"vocab_size": 11})


def test_lstm_states_are_carried_per_layer_and_a_skipped_layer_keeps_its_own() -> None:
    model = lstm_lm()
    LayerDrop(LayerDropConfig(p=0.5)).attach(model)
    model.train()
    previous = [None] * 3
    for step in range(30):
        model(batch(step))
        kept = model.layers.last_kept
        for i in range(3):
            if i not in kept:  # not run: its carried state passes through unchanged
                assert model.state[i] is previous[i] or torch.equal(
                    model.state[i][0], previous[i][0])
        previous = list(model.state)
    assert all(s is not None for s in model.state)


def test_a_step_that_skips_every_lstm_layer_is_followed_by_a_normal_step() -> None:
    model = lstm_lm()
    LayerDrop(LayerDropConfig(p=1.0)).attach(model)
    model.train()(batch(1))
    assert model.layers.last_kept == [] and model.state == [None, None, None]
    model.layers.rates = [0.0, 0.0, 0.0]
    out = model(batch(2))
    assert model.layers.last_kept == [0, 1, 2] and torch.isfinite(out.loss)


def test_mlp_layerdrop_skips_only_layers_of_equal_width() -> None:
    from framework.models.mlp import MLP
    from framework.models.specs import MLPSpec

    torch.manual_seed(0)
    model = MLP(MLPSpec(hidden=[16, 16, 16, 8]), {"input_dim": 5, "num_classes": 3})
    strategy = LayerDrop(LayerDropConfig(p=0.9, sweep=[]))
    strategy.attach(model)
    assert model.layers.rates == [0.0, 0.9, 0.9, 0.0]  # 5->16 and 16->8 always run
    model.train()
    x = Batch(torch.randn(4, 5), torch.randint(0, 3, (4,)))
    patterns = set()
    for _ in range(30):
        assert torch.isfinite(model(x).loss)
        patterns.add(tuple(model.layers.last_kept))
        assert {0, 3} <= set(model.layers.last_kept)
    assert len(patterns) > 1
    assert strategy.inference_layers(4) is None
    pruned = LayerDrop(LayerDropConfig(p=0.5, inference_depth=2, prune="last"))
    pruned.fixed = strategy.fixed
    assert pruned.inference_layers(4) == [0, 3]


def test_lr_drop_layers_are_the_models_own_under_layerdrop() -> None:
    from framework.strategies.stack import StrategyStack
    from plugins.lr_drop import LRDropConfig
    from plugins.standard import StandardConfig

    model = gpt(n_layer=4)
    stack = StrategyStack.from_configs([StandardConfig(p=0.1), LayerDropConfig(p=0.5),
                                        LRDropConfig(alpha=0.0, beta=1.0, gamma=0.0,
                                                     top_layers=1)])
    stack.attach(model)
    seen = []
    top = model.layers[3]
    top.register_forward_hook(lambda m, a, out: seen.append(out[0]))
    for step in range(20):
        seen.clear()
        terms = stack.compute_loss(model.train(), batch(step)).terms
        if 3 in model.layers.last_kept:
            # The top layer ran: the term is its distance, whatever else was skipped.
            first, second = seen[0].chunk(2)
            expected = (first - second).pow(2).mean()
            assert terms["hidden"].item() == pytest.approx(expected.item(), rel=1e-5)
        else:
            assert terms["hidden"].item() == 0.0  # skipped in both copies: it adds nothing
