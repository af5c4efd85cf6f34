"""The LSTM language model: sites, truncated BPTT state, tied decoder, a short study."""

from __future__ import annotations

from pathlib import Path

import torch

from framework.data.base import Batch
from framework.models.lstm_lm import LSTMLM
from framework.models.sites import find_sites
from framework.models.specs import LSTMLMSpec
from tests.conftest import write_study


def tiny(tie: bool = True, n_layer: int = 2) -> LSTMLM:
    torch.manual_seed(0)
    spec = LSTMLMSpec(n_layer=n_layer, n_embd=8, n_hidden=12, tie=tie, block_size=5)
    return LSTMLM(spec, {"vocab_size": 11})


def batch(B: int = 3, T: int = 5) -> Batch:
    x = torch.randint(0, 11, (B, T + 1), generator=torch.Generator().manual_seed(1))
    return Batch(x[:, :-1], x[:, 1:])


def test_declares_every_site_kind_and_ties_the_decoder() -> None:
    model = tiny(n_layer=3)
    kinds = [s.kind for s in find_sites(model)]
    assert kinds.count("recurrent") == 3 and kinds.count("hidden") == 2
    assert {"embedding", "output"} <= set(kinds)
    assert model.decoder.weight is model.tok_emb.weight
    assert model.layers[-1].hidden_size == 8 and model.layers[0].hidden_size == 12
    assert tiny(tie=False).decoder.weight is not tiny(tie=False).tok_emb.weight


def test_training_carries_detached_state_and_evaluation_resets_it() -> None:
    model = tiny().train()
    b = batch()
    first = model(b)
    assert model.state is not None and not model.state[0][0].requires_grad
    second = model(b)  # same inputs, carried state: different predictions
    assert not torch.allclose(first.logits, second.logits)
    carried = [h.clone() for h, _ in model.state]
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(b).logits, model(b).logits)  # zero state every time
    assert all(torch.equal(a, h) for a, (h, _) in zip(carried, model.state, strict=True))
    model.train()
    model.reset_state()
    torch.testing.assert_close(model(b).logits, first.logits)
    model(batch(B=2))  # another batch size starts afresh instead of failing


def test_loss_ignores_warm_up_targets_and_generates() -> None:
    model = tiny().eval()
    b = batch()
    targets = b.targets.clone()
    targets[:, :2] = -100
    with torch.no_grad():
        full = model(b).logits
        loss = model(Batch(b.inputs, targets)).loss
    expected = torch.nn.functional.cross_entropy(full[:, 2:].reshape(-1, 11),
                                                 b.targets[:, 2:].reshape(-1))
    torch.testing.assert_close(loss, expected)
    assert model.generate(b.inputs[:, :2], 4).shape == (3, 6)


def test_short_lstm_study_runs_end_to_end(tmp_path: Path, locations) -> None:
    import optuna

    from framework.config import load_spec
    from framework.tuning.study import run_study

    study = write_study(tmp_path, """
        name: lstm_tiny
        seed: 0
        model: {name: lstm_lm, n_layer: 2, n_embd: 8, n_hidden: 16, block_size: 8}
        data: {name: char_stream, eval_warmup: 4}
        train: {max_steps: 4, batch_size: 4, eval_every: 2, eval_batches: 2, warmup_steps: 1,
                threads: 1}
        dropout:
          - {name: structured_rnn, p: 0.3}
        search:
          n_trials: 1
          objectives: [{metric: val_bpc, direction: minimize}]
        """)
    run_study(load_spec(study), locations)
    trials = optuna.load_study(study_name="lstm_tiny", storage=locations.storage).trials
    assert len(trials) == 1 and trials[0].state.name == "COMPLETE"
    assert 5.0 < trials[0].value < 7.0  # bits per char near log2(65) = 6.02
