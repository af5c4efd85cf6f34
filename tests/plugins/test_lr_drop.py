"""LR-Drop: hidden-state, attention-map and output consistency of two dropout samples."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from framework.data.base import Batch
from framework.models.gpt import GPT
from framework.models.sites import find_sites
from framework.models.specs import GPTSpec
from framework.strategies.consistency import Weights
from framework.strategies.consistency import attention_distance
from framework.strategies.consistency import hidden_distance
from plugins.lr_drop import LRDrop
from plugins.lr_drop import LRDropConfig
from tests.plugins.test_r_drop import encoder
from tests.plugins.test_r_drop import padded_batch
from tests.plugins.test_r_drop import replay_masks
from tests.plugins.test_r_drop import run_short_study
from tests.plugins.test_r_drop import two_pass_loss


@pytest.mark.parametrize(("hidden", "attention"), [("mse", "mse"), ("cosine", "kl")])
def test_dropout_off_makes_every_term_exactly_zero(hidden: str, attention: str) -> None:
    config = LRDropConfig(alpha=1.0, beta=1.0, gamma=1.0, hidden_distance=hidden,
                          attention_distance=attention)
    model, batch = encoder(p=0.0), padded_batch()
    result = LRDrop(config).compute_loss(model, batch)
    assert {"ce", "kl", "hidden", "attention"} == set(result.terms)
    for name in ("kl", "hidden", "attention"):
        assert result.terms[name].item() == 0.0, name
    assert result.loss.item() == pytest.approx(2 * model(batch).loss.item(), rel=1e-6)


def test_dropout_on_makes_every_term_positive_and_the_loss_their_weighted_sum() -> None:
    config = LRDropConfig(alpha=0.5, beta=2.0, gamma=3.0)
    model = encoder(p=0.3)
    result = LRDrop(config).compute_loss(model, padded_batch())
    terms = result.terms
    assert all(terms[name].item() > 0 for name in ("kl", "hidden", "attention"))
    expected = (2 * terms["ce"] + 0.5 * terms["kl"] + 2.0 * terms["hidden"]
                + 3.0 * terms["attention"])
    assert result.loss.item() == pytest.approx(expected.item(), rel=1e-6)
    result.loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_distances_are_symmetric_and_non_negative() -> None:
    gen = torch.Generator().manual_seed(0)
    h_1, h_2 = torch.randn(2, 5, 8, generator=gen), torch.randn(2, 5, 8, generator=gen)
    a_1 = torch.softmax(torch.randn(2, 3, 5, 5, generator=gen), -1)
    a_2 = torch.softmax(torch.randn(2, 3, 5, 5, generator=gen), -1)
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    for kind in ("mse", "cosine"):
        forward, backward = hidden_distance(h_1, h_2, mask, kind), hidden_distance(h_2, h_1, mask,
                                                                                   kind)
        assert forward.item() > 0 and forward.item() == pytest.approx(backward.item(), rel=1e-6)
    for kind in ("mse", "kl"):
        forward = attention_distance(a_1, a_2, mask, kind)
        assert forward.item() > 0
        assert forward.item() == pytest.approx(attention_distance(a_2, a_1, mask, kind).item(),
                                               rel=1e-6)


def test_pads_contribute_nothing_to_the_layer_terms() -> None:
    gen = torch.Generator().manual_seed(2)
    mask = torch.tensor([[True, True, True, False], [True, True, False, False]])
    h_1, h_2 = torch.randn(2, 4, 6, generator=gen), torch.randn(2, 4, 6, generator=gen)
    noisy = h_2.clone()
    noisy[~mask] += 100.0
    for kind in ("mse", "cosine"):
        assert hidden_distance(h_1, h_2, mask, kind).item() == pytest.approx(
            hidden_distance(h_1, noisy, mask, kind).item(), rel=1e-6)
    # Pad keys get probability 0 in both maps; pad query rows may differ and must not count.
    scores = torch.randn(2, 2, 4, 4, generator=gen).masked_fill(~mask[:, None, None, :], -1e9)
    a_1, a_2 = torch.softmax(scores, -1), torch.softmax(scores * 0.5, -1)
    rows_differ = a_2.clone()
    rows_differ[~mask[:, None, :].expand(2, 2, 4)] = torch.softmax(
        torch.randn(int((~mask).sum()) * 2, 4, generator=gen), -1)
    for kind in ("mse", "kl"):
        assert attention_distance(a_1, a_2, mask, kind).item() == pytest.approx(
            attention_distance(a_1, rows_differ, mask, kind).item(), rel=1e-6)


def test_one_duplicated_pass_equals_two_passes_with_the_same_masks() -> None:
    model, batch = encoder(), padded_batch()
    ops = replay_masks(model, p=0.3, rows=3)
    config = LRDropConfig(alpha=1.0, beta=1.0, gamma=1.0, attention_distance="kl")
    one = LRDrop(config).compute_loss(model, batch)
    two = two_pass_loss(model, batch, Weights(alpha=1.0, beta=1.0, gamma=1.0,
                                              attention_distance="kl"), ops)
    for name in ("ce", "kl", "hidden", "attention"):
        assert one.terms[name].item() > 0
        assert one.terms[name].item() == pytest.approx(two.terms[name].item(), rel=1e-4), name


def test_layers_select_the_layer_terms() -> None:
    model, batch = encoder(p=0.3), padded_batch()
    torch.manual_seed(0)
    every = LRDrop(LRDropConfig(beta=1.0, gamma=0.0, alpha=0.0)).compute_loss(model, batch)
    torch.manual_seed(0)
    top = LRDrop(LRDropConfig(beta=1.0, gamma=0.0, alpha=0.0, top_layers=1)).compute_loss(
        model, batch)
    torch.manual_seed(0)
    last = LRDrop(LRDropConfig(beta=1.0, gamma=0.0, alpha=0.0, layers=[1])).compute_loss(
        model, batch)
    assert top.terms["hidden"].item() == last.terms["hidden"].item()
    assert 0 < top.terms["hidden"].item() < every.terms["hidden"].item()
    with pytest.raises(ValueError, match="not both"):
        LRDropConfig(layers=[0], top_layers=1)
    with pytest.raises(ValueError, match="outside"):
        LRDrop(LRDropConfig(layers=[5])).compute_loss(model, batch)


def test_works_on_the_causal_gpt_with_token_level_terms() -> None:
    torch.manual_seed(0)
    model = GPT(GPTSpec(n_layer=2, n_head=2, n_embd=16, block_size=8), {"vocab_size": 11})
    x = torch.randint(0, 11, (3, 8))
    batch = Batch(x, torch.roll(x, -1, 1))
    strategy = LRDrop(LRDropConfig(beta=1.0, gamma=1.0, attention_distance="kl"))
    off = strategy.compute_loss(model.train(), batch).terms
    assert all(off[name].item() == 0.0 for name in ("kl", "hidden", "attention"))
    for site in find_sites(model):
        site.p = 0.2
    on = strategy.compute_loss(model, batch)
    assert all(on.terms[name].item() > 0 for name in ("kl", "hidden", "attention"))
    on.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_a_short_study_runs_end_to_end_and_logs_each_term(tmp_path: Path, locations) -> None:
    metrics = run_short_study(tmp_path, locations,
                              "{name: lr_drop, beta: 1.0, gamma: 1.0, attention_distance: kl}")
    assert all(metrics[f"loss/{name}"] > 0 for name in ("ce", "kl", "hidden", "attention"))
