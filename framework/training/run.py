"""One trial's training from a validated spec: build data, model and strategies; train; export."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from framework import registry
from framework.strategies.base import TrainedModel
from framework.strategies.stack import StrategyStack
from framework.training.device import configure_device
from framework.training.device import pick_device
from framework.training.device import seed_everything
from framework.training.evaluate import evaluate
from framework.training.evaluate import score_held_out
from framework.training.inference import inference_tokens_per_sec
from framework.training.loop import TrainObserver
from framework.training.loop import TrainResult
from framework.training.loop import train


_datasets: dict[str, Any] = {}


def load_dataset(spec: Any) -> Any:
    """The dataset of ``spec``, reused across the trials of a process (it is read-only)."""
    # What of the model the data depend on: its context, and the tokenizer a pretrained one brings.
    key = spec.data.model_dump_json() + str(getattr(spec.model, "block_size", None)) + str(
        getattr(spec.model, "pretrained", None))
    if key not in _datasets:
        _datasets.clear()
        _datasets[key] = registry.create_dataset(spec.data, spec.model)
    return _datasets[key]


EXAMPLES_FILE = "test_examples.npz"
"""The per-example test scores a scored run leaves beside ``best.pt`` (for verdicts)."""


def run_training(spec: Any, artifact_dir: Path, observer: TrainObserver | None = None,
                 checkpoint: Callable[[dict[str, Any]], None] | None = None,
                 resume: dict[str, Any] | None = None, score_test: bool = False
                 ) -> TrainResult:
    """Train the study's model under its strategies; leave ``best.pt`` in ``artifact_dir``.

    The returned result's ``final`` metrics include what the strategies' ``after_training``
    hooks measured on the best checkpoint.

    Args:
        score_test: score the dataset's held-out splits (``test``) once, on the best
            checkpoint, and leave their per-example scores in ``test_examples.npz``. Only a
            confirmation asks: a search trial's numbers reach Optuna, which chooses, so it never
            sees the test split (nor do the strategies' ``after_training`` hooks).
    """
    if spec.train.threads:
        torch.set_num_threads(spec.train.threads)
    seed_everything(spec.seed)
    device = pick_device(spec.train.device)
    configure_device(device)
    dataset = load_dataset(spec)
    model = registry.create_model(spec.model, dataset.info)
    strategies = StrategyStack.from_configs(spec.dropout)
    result = train(model, dataset, spec.train, strategies, device=device, seed=spec.seed,
                   observer=observer, checkpoint=checkpoint, resume=resume)
    if warning := undropped_before_best(result.history, result.best_step):
        result.warnings.append(warning)
    if spec.train.target_val_loss is not None:
        result.final["steps_to_val_loss"] = steps_to_val_loss(
            result.history, spec.train.target_val_loss, spec.train.max_steps)
    held_out = tuple(getattr(dataset, "final_splits", ())) if score_test else ()
    final_scores = score_final_weights(model, dataset, spec, device, held_out, result)
    model.load_state_dict(result.best_state)
    torch.save(
        {"spec": spec.model_dump(mode="json"), "model": result.best_state,
         "step": result.best_step, "strategies": strategies.state_dict(),
         **checkpoint_data(dataset)},
        artifact_dir / "best.pt",
    )
    inference_model = strategies.for_inference(model)
    result.model = inference_model
    # Splits such as "test" are scored once, on the best checkpoint, never during training.
    for split in held_out:
        metrics, examples = score_held_out(inference_model, dataset, spec.train, device, split)
        result.final.update(metrics)
        result.examples.update(examples)
    if final_scores is None:  # the best checkpoint is the last one: its scores are the final ones
        final_scores = ({f"final_{k}": v for k, v in result.final.items() if k.startswith(
            tuple(f"{split}_" for split in held_out))},
                        {f"final_{k}": v for k, v in result.examples.items()})
    result.final.update(final_scores[0])
    result.examples.update(final_scores[1])
    if result.examples:
        np.savez_compressed(artifact_dir / EXAMPLES_FILE, **result.examples)
    if spec.train.measure_inference:
        result.final["inference_tokens_per_sec"] = inference_tokens_per_sec(
            inference_model, dataset, spec.train, device)
    trained = TrainedModel(
        model=model,
        evaluate=lambda m: evaluate(m, dataset, spec.train, device, splits=("val",)),
        artifact_dir=artifact_dir,
        history=result.history,
        eval_batches=lambda split: (batch.to(device) for batch in dataset.eval_batches(
            split, spec.train.batch_size, spec.train.eval_batches)),
        splits=("val", *held_out),
    )
    result.final.update(strategies.after_training(trained))
    return result


def score_final_weights(model: torch.nn.Module, dataset: Any, spec: Any, device: torch.device,
                        held_out: tuple[str, ...], result: TrainResult
                        ) -> tuple[dict[str, float], dict[str, np.ndarray]] | None:
    """``final_test_*``: the held-out splits scored on the weights at the end of training, the
    counterpart of ``final_val_*`` (a schedule such as late dropout acts after a best checkpoint
    that came early, and only the end of training shows it). Scored as the final val evaluation
    is, in eval mode without the strategies' inference transform.

    Returns:
        The metrics and per-example scores, named ``final_<metric>``; None when there is nothing
        to score or the last evaluation is the best checkpoint (its scores are then the same).
    """
    if not held_out or not result.history or result.history[-1]["step"] == result.best_step:
        return None
    metrics: dict[str, float] = {}
    examples: dict[str, np.ndarray] = {}
    for split in held_out:
        split_metrics, split_examples = score_held_out(model, dataset, spec.train, device, split)
        metrics.update({f"final_{k}": v for k, v in split_metrics.items()})
        examples.update({f"final_{k}": v for k, v in split_examples.items()})
    return metrics, examples


def steps_to_val_loss(history: list[dict[str, float]], target: float, max_steps: int) -> int:
    """The first evaluated step whose val loss is at or below ``target``.

    Computed from the run's evaluations after training, so its resolution is ``eval_every``.

    Returns:
        That step, or ``max_steps + 1`` when no evaluation reached the target: a value past the
        run's end that stays finite, so means and tests over seeds still work, ranks such runs
        last, and reads as "not reached by the end" (the mean of a group with such runs is then
        a lower bound).
    """
    return next((int(e["step"]) for e in history if e["val_loss"] <= target), max_steps + 1)


def undropped_before_best(history: list[dict[str, float]], best_step: int) -> str | None:
    """A warning when every logged dropout rate was 0 up to the best checkpoint and not after
    (late dropout whose cutoff comes after the best step): the best checkpoint's ``val_*`` are
    then those of a model trained without dropout, the same as a no-dropout run's."""
    rates = [key for key in history[0] if key.startswith("rate/")] if history else []
    before = [h for h in history if h["step"] <= best_step]
    after = [h for h in history if h["step"] > best_step]
    if not rates or not before or not after:
        return None
    if any(h[key] for h in before for key in rates) or not any(h[key] for h in after
                                                                 for key in rates):
        return None
    return (f"every dropout rate was 0 up to the best checkpoint (step {best_step}), so its "
            "val_* scores are those of a model trained without dropout; final_val_* score the "
            "end of training")


def checkpoint_data(dataset: Any) -> dict[str, Any]:
    """What ``best.pt`` keeps of the data, so that the checkpoint alone rebuilds the model and
    reads new files: the dataset's ``info`` and, where it has one, its ``export()``ed
    vocabulary (plain lists and numbers, loadable with ``weights_only=True``)."""
    data = {"info": dict(dataset.info)}
    export = getattr(dataset, "export", None)
    if export is not None:
        data["data_export"] = export()
    return data
