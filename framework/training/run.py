"""One trial's training from a validated spec: build data, model and strategies; train; export."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from framework import registry
from framework.strategies.base import TrainedModel
from framework.strategies.stack import StrategyStack
from framework.training.device import pick_device
from framework.training.device import seed_everything
from framework.training.evaluate import evaluate
from framework.training.inference import inference_tokens_per_sec
from framework.training.loop import TrainObserver
from framework.training.loop import TrainResult
from framework.training.loop import train


_datasets: dict[str, Any] = {}


def load_dataset(spec: Any) -> Any:
    """The dataset of ``spec``, reused across the trials of a process (it is read-only)."""
    key = spec.data.model_dump_json() + str(getattr(spec.model, "block_size", None))
    if key not in _datasets:
        _datasets.clear()
        _datasets[key] = registry.create_dataset(spec.data, spec.model)
    return _datasets[key]


def run_training(spec: Any, artifact_dir: Path, observer: TrainObserver | None = None,
                 checkpoint: Callable[[dict[str, Any]], None] | None = None,
                 resume: dict[str, Any] | None = None) -> TrainResult:
    """Train the study's model under its strategies; leave ``best.pt`` in ``artifact_dir``.

    The returned result's ``final`` metrics include what the strategies' ``after_training``
    hooks measured on the best checkpoint.
    """
    if spec.train.threads:
        torch.set_num_threads(spec.train.threads)
    seed_everything(spec.seed)
    device = pick_device(spec.train.device)
    dataset = load_dataset(spec)
    model = registry.create_model(spec.model, dataset.info)
    strategies = StrategyStack.from_configs(spec.dropout)
    result = train(model, dataset, spec.train, strategies, device=device, seed=spec.seed,
                   observer=observer, checkpoint=checkpoint, resume=resume)
    model.load_state_dict(result.best_state)
    torch.save(
        {"spec": spec.model_dump(mode="json"), "model": result.best_state,
         "step": result.best_step, "strategies": strategies.state_dict()},
        artifact_dir / "best.pt",
    )
    inference_model = strategies.for_inference(model)
    # Splits such as "test" are scored once, on the best checkpoint, never during training.
    for split in getattr(dataset, "final_splits", ()):
        result.final.update(
            evaluate(inference_model, dataset, spec.train, device, splits=(split,)))
    result.final["inference_tokens_per_sec"] = inference_tokens_per_sec(
        inference_model, dataset, spec.train, device)
    trained = TrainedModel(
        model=model,
        evaluate=lambda m: evaluate(m, dataset, spec.train, device, splits=("val",)),
        artifact_dir=artifact_dir,
        history=result.history,
    )
    result.final.update(strategies.after_training(trained))
    return result
