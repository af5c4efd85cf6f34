"""``train.measure_inference: false`` skips the inference-speed pass, and the metric with it."""

from pathlib import Path

import pytest
import torch

from framework.config import load_spec
from framework.errors import SpecError
from framework.training import run as run_module
from framework.training.run import run_training


def test_the_inference_pass_is_skipped_when_off(tiny_study: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = run_module.inference_tokens_per_sec
    monkeypatch.setattr(run_module, "inference_tokens_per_sec",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    threads = torch.get_num_threads()
    try:
        for on in (True, False):
            spec = load_spec(tiny_study, [f"train.measure_inference={str(on).lower()}",
                                          "search.space={}", "train.threads=1"]).spec
            result = run_training(spec, tmp_path)
            assert ("inference_tokens_per_sec" in result.final) is on
            assert "val_loss" in result.final and (tmp_path / "best.pt").is_file()
    finally:
        torch.set_num_threads(threads)
    assert len(calls) == 1


def test_an_objective_on_the_skipped_metric_is_refused(tiny_study: Path) -> None:
    objective = "search.objectives=[{metric: inference_tokens_per_sec, direction: maximize}]"
    load_spec(tiny_study, [objective])  # measured by default
    with pytest.raises(SpecError) as error:
        load_spec(tiny_study, [objective, "train.measure_inference=false"])
    assert error.value.key == "search.objectives[0].metric"
    assert str(tiny_study) in str(error.value)
