"""Training on a CUDA GPU: bf16 autocast, TF32, fused AdamW, pinned batches, ``train.compile``.

Every test here needs a CUDA device and is skipped without one (``benchmarks/gpu_check.sh`` runs
them on a GPU machine).
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch._dynamo.utils import counters

from framework import registry
from framework.config import load_spec
from framework.data.base import Batch
from framework.models.sites import find_sites
from framework.strategies.stack import StrategyStack
from framework.training.loop import train
from framework.training.run import load_dataset
from framework.training.run import run_training


pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
CUDA = torch.device("cuda")


@pytest.fixture
def clean_compiler() -> Iterator[None]:
    torch._dynamo.reset()
    counters.clear()
    yield
    torch._dynamo.reset()


def build(tiny_study: Path, *overrides: str):
    spec = load_spec(tiny_study, ["train.device=cuda", "search.space={}", "train.warmup_steps=0",
                                  *overrides]).spec
    dataset = load_dataset(spec)
    torch.manual_seed(0)
    return spec, dataset, registry.create_model(spec.model, dataset.info)


def test_a_trial_trains_on_the_gpu_with_tf32_and_fused_adamw(tiny_study: Path,
                                                             tmp_path: Path) -> None:
    spec = load_spec(tiny_study, ["train.device=cuda", "search.space={}", "train.max_steps=60",
                                  "train.eval_every=20", "train.lr=1e-2"]).spec
    result = run_training(spec, tmp_path)
    losses = [h["val_loss"] for h in result.history]
    assert losses[-1] < losses[0] < 4.2  # ln(65) = 4.17 is an untrained model
    assert torch.get_float32_matmul_precision() == "high"  # TF32 for float32 products
    assert result.final["inference_tokens_per_sec"] > 0
    assert next(result.model.parameters()).is_cuda


def test_the_optimizer_is_fused_on_the_gpu(tiny_study: Path) -> None:
    from framework.training.optim import make_optimizer

    spec, _, model = build(tiny_study)
    optimizer = make_optimizer(model.to(CUDA), spec.train)
    assert all(group["fused"] for group in optimizer.param_groups)


def test_batches_reach_the_gpu_from_pinned_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    pinned = []
    real = torch.Tensor.pin_memory
    monkeypatch.setattr(torch.Tensor, "pin_memory",
                        lambda self, *a: pinned.append(self.shape) or real(self, *a))
    batch = Batch(torch.arange(6).view(2, 3), torch.arange(6).view(2, 3) + 1).to(CUDA)
    torch.cuda.synchronize()
    assert batch.inputs.is_cuda and batch.targets.is_cuda and len(pinned) == 2
    assert batch.targets.cpu().tolist() == [[1, 2, 3], [4, 5, 6]]


def test_compiled_decay_on_the_gpu_is_bounded_and_reaches_attention(
    tiny_study: Path, clean_compiler: None
) -> None:
    spec, dataset, model = build(
        tiny_study, "train.compile=true", "train.max_steps=40", "train.eval_every=40",
        "train.eval_batches=1",
        "dropout=[{name: linear_decay, p_start: 0.2, p_end: 0.0, decay_steps: 30}]")
    result = train(model, dataset, spec.train, StrategyStack.from_configs(spec.dropout),
                   device=CUDA, seed=0)
    assert result.history[-1]["rate/attention"] == 0.0
    # Training at p > 0 (SDPA outside the graph splits it in pieces), at p = 0, evaluation:
    # a bounded count, whatever the number of rates the decay went through.
    assert counters["stats"]["unique_graphs"] <= 12
    model.train()
    batch = dataset.train_batch(4, torch.Generator().manual_seed(0)).to(CUDA)
    attention = find_sites(model, ["attention"])
    for site in attention:
        site.p = 0.5
    assert not torch.equal(model(batch).logits, model(batch).logits), "no attention dropout"
