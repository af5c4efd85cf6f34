"""Whole-study checks: the memory estimate against real models, and what it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from framework import registry
from framework.config import load_spec
from framework.config.checks import MemoryBudget
from framework.config.checks import check_memory
from framework.config.checks import estimate_memory
from framework.config.checks import machine_memory
from framework.config.checks import memory_budget
from framework.errors import SpecError
from tests.conftest import TINY_STUDY
from tests.conftest import write_study


MODELS = [
    ({"name": "gpt", "n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 16},
     {"name": "shakespeare_char"}),
    ({"name": "encoder", "n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 16},
     {"name": "sst2"}),
    ({"name": "lstm_lm", "n_layer": 2, "n_embd": 24, "n_hidden": 40, "tie": False,
      "block_size": 16}, {"name": "char_stream"}),
    ({"name": "mlp", "hidden": [64, 32]}, {"name": "digits"}),
]


@pytest.mark.parametrize(("model", "data"), MODELS, ids=[m["name"] for m, _ in MODELS])
def test_the_parameter_estimate_is_a_close_lower_bound_of_the_real_model(
    tmp_path: Path, model: dict, data: dict
) -> None:
    study = write_study(tmp_path, TINY_STUDY.format(name="tiny"))
    overrides = [f"model={model}", f"data={data}", "dropout=[]", "search.space={}"]
    spec = load_spec(study, overrides).spec
    estimate = estimate_memory(spec)
    info = {"vocab_size": 65, "input_dim": 64, "num_classes": 10}
    if data["name"] == "sst2":
        info = {"vocab_size": 0, "num_classes": 2}  # its vocabulary is not known before loading
    built = registry.create_model(spec.model, info)
    actual = sum(p.numel() for p in built.parameters())
    assert 0.95 * actual <= estimate.parameters <= actual


def test_a_model_too_large_for_the_memory_names_the_model_then_the_batch(
    tmp_path: Path,
) -> None:
    spec = load_spec(write_study(tmp_path, TINY_STUDY.format(name="tiny"))).spec
    estimate = estimate_memory(spec)
    ram = "this machine's"
    check_memory(spec, MemoryBudget(estimate.total_bytes, ram))  # fits exactly: accepted
    with pytest.raises(SpecError) as error:
        check_memory(spec, MemoryBudget(estimate.parameter_bytes - 1, ram))
    assert error.value.key == "model" and f"{estimate.parameters:,} parameters" in str(error.value)
    with pytest.raises(SpecError) as error:
        check_memory(spec, MemoryBudget(estimate.total_bytes - 1, ram))
    assert error.value.key == "train.batch_size" and "a batch of 4 x 16 tokens" in str(error.value)
    assert f"{ram} " in str(error.value) and "float32 activations" in str(error.value)


def test_on_a_gpu_the_bound_is_the_gpus_memory_with_bf16_activations(tmp_path: Path) -> None:
    """The loop autocasts to bf16 on CUDA: activations at float32 would overstate the bound and
    refuse a model that fits the GPU."""
    spec = load_spec(write_study(tmp_path, TINY_STUDY.format(name="tiny"))).spec
    estimate = estimate_memory(spec)
    at_bf16 = estimate.total_bytes_at(2)
    assert at_bf16 < estimate.total_bytes
    check_memory(spec, MemoryBudget(at_bf16, "the GPU's", bytes_per_activation=2))
    with pytest.raises(SpecError) as error:
        check_memory(spec, MemoryBudget(at_bf16 - 1, "the GPU's", bytes_per_activation=2))
    assert error.value.key == "train.batch_size"
    assert "the GPU's " in str(error.value) and "bf16 activations" in str(error.value)


def test_the_budget_is_this_machines_memory_unless_the_study_trains_on_a_gpu() -> None:
    import torch

    assert memory_budget("cpu") == MemoryBudget(machine_memory(), "this machine's", 4)
    if torch.cuda.is_available():
        smallest = min(torch.cuda.get_device_properties(i).total_memory
                       for i in range(torch.cuda.device_count()))
        assert memory_budget("auto") == MemoryBudget(smallest, "the GPU's", 2)
        assert memory_budget("cuda") == memory_budget("auto")
    else:
        assert memory_budget("auto") == memory_budget("cpu")
