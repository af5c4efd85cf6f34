import copy

import pytest
import torch

from framework.config.sections import TrainSpec
from framework.training.optim import fused_supported
from framework.training.optim import lr_at
from framework.training.optim import make_optimizer


def test_warmup_then_cosine_to_min_lr() -> None:
    spec = TrainSpec(lr=1e-3, min_lr=1e-4, warmup_steps=10, max_steps=110)
    assert lr_at(0, spec) == pytest.approx(1e-3 / 11)
    assert lr_at(10, spec) == pytest.approx(1e-3)
    assert lr_at(60, spec) == pytest.approx((1e-3 + 1e-4) / 2)
    assert lr_at(110, spec) == pytest.approx(1e-4)
    assert TrainSpec(lr=2e-3).min_lr is None and lr_at(10**6, TrainSpec(lr=2e-3)) == 2e-4


def _twin_models() -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Embedding(11, 8), torch.nn.Linear(8, 5),
                                torch.nn.LayerNorm(5))
    return model, copy.deepcopy(model)


def test_adamw_is_fused_on_the_cpu_and_updates_as_the_unfused_one() -> None:
    fused_model, plain_model = _twin_models()
    spec = TrainSpec(lr=1e-2, weight_decay=0.1)
    fused = make_optimizer(fused_model, spec)
    assert all(group["fused"] for group in fused.param_groups)
    plain = make_optimizer(plain_model, spec)
    for group in plain.param_groups:  # the same groups and settings, unfused
        group["fused"], group["foreach"] = None, False
    generator = torch.Generator().manual_seed(1)
    for _ in range(5):
        tokens = torch.randint(0, 11, (4, 3), generator=generator)
        for model, optimizer in ((fused_model, fused), (plain_model, plain)):
            model(tokens).square().mean().backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    for (name, a), b in zip(fused_model.named_parameters(), plain_model.parameters(),
                            strict=True):
        assert not torch.equal(a, _twin_models()[0].state_dict()[name]), f"{name} did not move"
        # Each step moves a weight by about lr = 1e-2; the kernels differ in float rounding only.
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_fused_is_not_asked_for_parameters_torch_cannot_fuse() -> None:
    assert fused_supported([torch.zeros(2)])
    assert not fused_supported([torch.zeros(2), torch.zeros(2, dtype=torch.int64)])
