"""Whole-study checks: the memory estimate against real models, and what it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from framework import registry
from framework.config import load_spec
from framework.config.checks import check_memory
from framework.config.checks import estimate_memory
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
    check_memory(spec, available=estimate.total_bytes)  # fits exactly: accepted
    with pytest.raises(SpecError) as error:
        check_memory(spec, available=estimate.parameter_bytes - 1)
    assert error.value.key == "model" and f"{estimate.parameters:,} parameters" in str(error.value)
    with pytest.raises(SpecError) as error:
        check_memory(spec, available=estimate.total_bytes - 1)
    assert error.value.key == "train.batch_size" and "a batch of 4 x 16 tokens" in str(error.value)
