import pytest

from framework.config.sections import TrainSpec
from framework.training.optim import lr_at


def test_warmup_then_cosine_to_min_lr() -> None:
    spec = TrainSpec(lr=1e-3, min_lr=1e-4, warmup_steps=10, max_steps=110)
    assert lr_at(0, spec) == pytest.approx(1e-3 / 11)
    assert lr_at(10, spec) == pytest.approx(1e-3)
    assert lr_at(60, spec) == pytest.approx((1e-3 + 1e-4) / 2)
    assert lr_at(110, spec) == pytest.approx(1e-4)
    assert TrainSpec(lr=2e-3).min_lr is None and lr_at(10**6, TrainSpec(lr=2e-3)) == 2e-4
