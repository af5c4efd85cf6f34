"""R-Drop: output consistency of two dropout samples from one pass on the duplicated batch."""

from __future__ import annotations

from pathlib import Path

from mlflow import MlflowClient
import optuna
import pytest
import torch
from torch import nn

from framework.config import load_spec
from framework.data.base import Batch
from framework.models.encoder import Encoder
from framework.models.gpt import GPT
from framework.models.sites import find_sites
from framework.models.specs import EncoderSpec
from framework.models.specs import GPTSpec
from framework.strategies.consistency import Weights
from framework.strategies.consistency import combine
from framework.strategies.consistency import duplicate
from framework.strategies.consistency import halves
from framework.strategies.consistency import symmetric_kl
from framework.strategies.consistency import terms
from framework.tuning.study import run_study
from plugins.r_drop import RDrop
from plugins.r_drop import RDropConfig
from tests.conftest import write_study


def encoder(p: float = 0.0) -> Encoder:
    torch.manual_seed(0)
    model = Encoder(EncoderSpec(n_layer=2, n_head=2, n_embd=16, block_size=12),
                    {"vocab_size": 20, "num_classes": 3})
    for site in find_sites(model):
        site.p = p
    return model.train()


def padded_batch() -> Batch:
    inputs = torch.tensor([[2, 5, 6, 7, 8, 0], [2, 9, 4, 0, 0, 0], [2, 3, 3, 3, 3, 3]])
    return Batch(inputs, torch.tensor([0, 2, 1]), inputs != 0)


class ReplayMask(nn.Module):
    """Dropout whose mask for a duplicated batch is fixed by a seed; serves either half alone.

    Lets one pass on the duplicated batch and two passes on the batch see the same masks.
    """

    def __init__(self, seed: int, p: float, rows: int):
        super().__init__()
        self.seed, self.p, self.rows = seed, p, rows
        self.half: int | None = None

    def forward(self, x: torch.Tensor, **context: torch.Tensor) -> torch.Tensor:
        shape = (2 * self.rows, *x.shape[1:])
        keep = torch.rand(shape, generator=torch.Generator().manual_seed(self.seed)) >= self.p
        if self.half is not None:
            keep = halves(keep)[self.half]
        return x * keep / (1 - self.p)


def replay_masks(model: nn.Module, p: float, rows: int) -> list[ReplayMask]:
    ops = []
    for i, site in enumerate(find_sites(model)):
        site.op = ReplayMask(seed=i, p=p, rows=rows)
        ops.append(site.op)
    return ops


def two_pass_loss(model: nn.Module, batch: Batch, weights: Weights, ops: list[ReplayMask]):
    need = {"need_hidden": bool(weights.beta), "need_attention": bool(weights.gamma)}
    outs = []
    for half in (0, 1):
        for op in ops:
            op.half = half
        outs.append(model(batch, **need))
    for op in ops:
        op.half = None
    ce = 0.5 * (outs[0].loss + outs[1].loss)
    return combine(ce, terms(outs[0], outs[1], batch, weights), weights)


def test_dropout_off_gives_identical_halves_and_a_zero_kl() -> None:
    model, batch = encoder(p=0.0), padded_batch()
    logits = model(duplicate(batch)).logits
    assert torch.equal(*halves(logits))
    result = RDrop(RDropConfig(alpha=1.0)).compute_loss(model, batch)
    assert result.terms["kl"].item() == 0.0
    # CE_1 + CE_2 (the paper's eq. 3); ``ce`` logs their mean, comparable to one pass's loss.
    assert result.terms["ce"].item() == pytest.approx(model(batch).loss.item(), rel=1e-6)
    assert result.loss.item() == pytest.approx(2 * model(batch).loss.item(), rel=1e-6)


def test_dropout_on_gives_a_positive_kl_and_gradients_through_both_halves() -> None:
    model, batch = encoder(p=0.3), padded_batch()
    result = RDrop(RDropConfig(alpha=2.0)).compute_loss(model, batch)
    assert result.terms["kl"].item() > 0
    assert result.loss.item() == pytest.approx(
        (2 * result.terms["ce"] + 2.0 * result.terms["kl"]).item(), rel=1e-6)
    result.loss.backward()
    assert model.tok_emb.weight.grad.abs().sum() > 0


def test_ce_mean_is_the_documented_alternative_to_the_papers_sum() -> None:
    batch = padded_batch()
    torch.manual_seed(3)
    summed = RDrop(RDropConfig(alpha=1.0)).compute_loss(encoder(p=0.3), batch)
    torch.manual_seed(3)
    averaged = RDrop(RDropConfig(alpha=1.0, ce="mean")).compute_loss(encoder(p=0.3), batch)
    assert summed.terms["kl"].item() == pytest.approx(averaged.terms["kl"].item(), rel=1e-6)
    assert summed.loss.item() - averaged.loss.item() == pytest.approx(
        averaged.terms["ce"].item(), rel=1e-5)


def test_symmetric_kl_is_symmetric_non_negative_and_zero_only_when_equal() -> None:
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(8, 5, generator=gen), torch.randn(8, 5, generator=gen)
    assert symmetric_kl(a, b).item() == pytest.approx(symmetric_kl(b, a).item(), rel=1e-6)
    assert symmetric_kl(a, b).item() > 0
    assert symmetric_kl(a, a).item() == 0.0
    # Shifting logits leaves the distributions, hence the KL, unchanged.
    assert symmetric_kl(a + 3.0, b).item() == pytest.approx(symmetric_kl(a, b).item(), rel=1e-5)


def test_pad_tokens_do_not_count_in_the_token_level_kl() -> None:
    gen = torch.Generator().manual_seed(1)
    a, b = torch.randn(2, 4, 7, generator=gen), torch.randn(2, 4, 7, generator=gen)
    mask = torch.tensor([[True, True, False, False], [True, True, True, False]])
    changed = b.clone()
    changed[~mask] = torch.randn(int((~mask).sum()), 7, generator=gen) * 10
    assert symmetric_kl(a, b, mask).item() == pytest.approx(
        symmetric_kl(a, changed, mask).item(), rel=1e-6)
    assert symmetric_kl(a, b, mask).item() != pytest.approx(symmetric_kl(a, b).item(), rel=1e-3)


def test_one_duplicated_pass_equals_two_passes_with_the_same_masks() -> None:
    model, batch = encoder(), padded_batch()
    ops = replay_masks(model, p=0.3, rows=3)
    weights = Weights(alpha=1.0)
    one = RDrop(RDropConfig(alpha=1.0)).compute_loss(model, batch)
    two = two_pass_loss(model, batch, weights, ops)
    assert one.terms["kl"].item() > 0
    for name in ("ce", "kl"):
        assert one.terms[name].item() == pytest.approx(two.terms[name].item(), rel=1e-5)
    assert one.loss.item() == pytest.approx(two.loss.item(), rel=1e-5)


def test_token_level_kl_on_the_gpt() -> None:
    torch.manual_seed(0)
    model = GPT(GPTSpec(n_layer=1, n_head=2, n_embd=16, block_size=8), {"vocab_size": 11})
    x = torch.randint(0, 11, (3, 8))
    batch = Batch(x, torch.roll(x, -1, 1))
    strategy = RDrop(RDropConfig())
    assert strategy.compute_loss(model.train(), batch).terms["kl"].item() == 0.0
    for site in find_sites(model):
        site.p = 0.2
    assert strategy.compute_loss(model, batch).terms["kl"].item() > 0


SST2_STUDY = """
name: {name}
seed: 0
model: {{name: encoder, n_layer: 1, n_head: 2, n_embd: 16, block_size: 24}}
data: {{name: sst2, train_path: {path}, test_path: {path}, val_size: 8, min_count: 1}}
train: {{max_steps: 4, batch_size: 8, eval_every: 2, eval_batches: 2, warmup_steps: 1}}
dropout:
  - {{name: standard, p: 0.1}}
  - {strategy}
search:
  n_trials: 1
  sampler: {{name: random, seed: 0}}
  objectives: [{{metric: val_accuracy, direction: maximize}}]
"""


def labelled_file(folder: Path, n: int = 40) -> str:
    words = ["good", "great", "fine", "bad", "awful", "dull", "film", "plot", "the", "a"]
    gen = torch.Generator().manual_seed(0)
    lines = ["sentence\tlabel"]
    for _ in range(n):
        picks = torch.randint(len(words), (5,), generator=gen).tolist()
        sentence = " ".join(words[i] for i in picks)
        lines.append(f"{sentence} \t{int(any(words[i] in ('good', 'great') for i in picks))}")
    path = folder / "labelled.tsv"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def run_short_study(tmp_path: Path, locations, strategy: str) -> dict[str, float]:
    """Train a 1-layer encoder for 4 steps under ``strategy``; the trial's logged metrics."""
    text = SST2_STUDY.format(name="short", path=labelled_file(tmp_path), strategy=strategy)
    run_study(load_spec(write_study(tmp_path, text)), locations)
    trial = optuna.load_study(study_name="short", storage=locations.storage).trials[0]
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert 0.0 <= trial.value <= 1.0
    run = MlflowClient(locations.tracking_uri).get_run(trial.user_attrs["mlflow_run_id"])
    return run.data.metrics


def test_a_short_study_runs_end_to_end_and_logs_each_term(tmp_path: Path, locations) -> None:
    metrics = run_short_study(tmp_path, locations, "{name: r_drop, alpha: 1.0}")
    assert metrics["loss/kl"] > 0 and metrics["loss/ce"] > 0
    assert "final/val_accuracy" in metrics
