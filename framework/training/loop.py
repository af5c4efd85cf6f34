"""The training loop: one function to read top to bottom.

It knows nothing about Optuna or MLflow: it calls an observer after every step and evaluation,
and the tuning layer turns those calls into trial reports, pruning and logged metrics.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
import math
import random
import time
from typing import Any
from typing import Protocol

import numpy as np
import torch
from torch import nn

from framework.config.sections import TrainSpec
from framework.strategies.stack import StrategyStack
from framework.training.compile import compile_model
from framework.training.device import autocast
from framework.training.evaluate import evaluate
from framework.training.optim import lr_at
from framework.training.optim import make_optimizer


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or infinite: the trial cannot go on."""


class TrainObserver(Protocol):
    def on_step(self, step: int, total_steps: int) -> None: ...

    def on_eval(self, step: int, metrics: dict[str, float]) -> None:
        """May raise (e.g. ``optuna.TrialPruned``) to stop training."""
        ...


@dataclass
class TrainResult:
    history: list[dict[str, float]] = field(default_factory=list)
    """Every evaluation: ``step`` and its metrics."""
    best_step: int = 0
    best_state: dict[str, torch.Tensor] | None = None
    """Model weights at the lowest val loss, on the CPU."""
    final: dict[str, float] = field(default_factory=dict)
    """Final metrics: ``val_*`` and ``train_loss`` at the best step, plus time and throughput."""
    model: nn.Module | None = None
    """The model for inference at the best checkpoint (set by ``run_training``)."""
    examples: dict[str, np.ndarray] = field(default_factory=dict)
    """Per-example scores of the held-out splits (``test_loss``: one value per example), when
    the run scored them."""
    warnings: list[str] = field(default_factory=list)
    """What a reader of the final metrics must know (e.g. no dropout before the best step)."""


def train(
    model: nn.Module,
    dataset: Any,
    spec: TrainSpec,
    strategies: StrategyStack,
    *,
    device: torch.device,
    seed: int,
    observer: TrainObserver | None = None,
    checkpoint: Callable[[dict[str, Any]], None] | None = None,
    resume: dict[str, Any] | None = None,
) -> TrainResult:
    """Train ``model`` for ``spec.max_steps`` steps; keep the best checkpoint by val loss.

    ``checkpoint`` receives the full training state after every evaluation; passing such a state
    back as ``resume`` continues the run from that step instead of starting over.
    """
    # Before the optimizer: a strategy may add parameters (Concrete dropout's learned rates).
    strategies.attach(model, getattr(dataset, "info", None))
    model.to(device)
    compile_model(model, spec, strategies)  # when train.compile asks (it logs a refusal)
    optimizer = make_optimizer(model, spec)
    generator = torch.Generator().manual_seed(seed)
    result = TrainResult()
    best_val = math.inf
    train_seconds, total_tokens, start_step = 0.0, 0, 0
    if resume is not None:
        start_step, best_val, train_seconds, total_tokens = _restore(
            resume, model, optimizer, generator, strategies, result)
    window_tokens, window_loss, window_steps = 0, torch.zeros((), device=device), 0
    window_terms: dict[str, torch.Tensor] = defaultdict(lambda: torch.zeros((), device=device))
    model.train()
    started = time.perf_counter()
    for step in range(start_step, spec.max_steps):
        lr = lr_at(step, spec)
        for group in optimizer.param_groups:
            group["lr"] = lr
        strategies.on_step(step, spec.max_steps)

        batch = dataset.train_batch(spec.batch_size, generator).to(device)
        with autocast(device):
            loss = strategies.compute_loss(model, batch)
        loss.loss.backward()
        if spec.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), spec.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

        window_tokens += batch.n_tokens
        window_steps += 1
        window_loss += loss.loss.detach()
        for name, term in loss.terms.items():
            window_terms[name] += term.detach()
        if observer is not None:
            observer.on_step(step, spec.max_steps)

        done = step + 1
        if done % spec.eval_every and done != spec.max_steps:
            continue
        elapsed = time.perf_counter() - started
        train_seconds += elapsed
        total_tokens += window_tokens
        metrics = {
            "train_loss_running": (window_loss / window_steps).item(),
            **{f"loss/{n}": (t / window_steps).item() for n, t in window_terms.items()},
            **evaluate(model, dataset, spec, device),
            "lr": lr,
            "tokens_per_sec": window_tokens / elapsed,
            **strategies.log_values(),
        }
        if not all(math.isfinite(metrics[k]) for k in ("train_loss_running", "val_loss")):
            raise NonFiniteLoss(f"loss is not finite at step {done}: "
                                f"train {metrics['train_loss_running']}, val {metrics['val_loss']}")
        result.history.append({"step": done, **metrics})
        if metrics["val_loss"] < best_val:
            best_val, result.best_step = metrics["val_loss"], done
            result.best_state = {k: v.detach().to("cpu", copy=True)
                                 for k, v in model.state_dict().items()}
            result.final = {k: v for k, v in metrics.items()
                            if k.startswith("val_") or k == "train_loss"}
        strategies.on_eval(done, metrics)
        if checkpoint is not None:
            checkpoint({
                "step": done, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "strategies": strategies.state_dict(), "generator": generator.get_state(),
                "rng": (torch.get_rng_state(), random.getstate(), np.random.get_state()),
                "history": result.history, "best_step": result.best_step,
                "best_state": result.best_state, "final": result.final, "best_val": best_val,
                "train_seconds": train_seconds, "total_tokens": total_tokens,
            })
        if observer is not None:
            observer.on_eval(done, metrics)
        window_tokens, window_steps = 0, 0
        window_loss = torch.zeros((), device=device)
        window_terms.clear()
        started = time.perf_counter()

    # The last evaluation's scores beside the best checkpoint's: a schedule that changes the
    # rate after the best checkpoint (late dropout) shows only here.
    result.final.update(
        {f"final_{k}": v for k, v in result.history[-1].items() if k.startswith("val_")},
        best_step=result.best_step,
        train_time=train_seconds,
        train_tokens_per_sec=total_tokens / train_seconds,
    )
    return result


def _restore(state: dict[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer,
             generator: torch.Generator, strategies: StrategyStack, result: TrainResult
             ) -> tuple[int, float, float, int]:
    """Load a state saved by the ``checkpoint`` callback; returns where the counters stood."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    strategies.load_state_dict(state["strategies"])
    generator.set_state(state["generator"])
    torch_rng, python_rng, numpy_rng = state["rng"]
    torch.set_rng_state(torch_rng)
    random.setstate(python_rng)
    np.random.set_state(numpy_rng)
    result.history = list(state["history"])
    result.best_step, result.best_state = state["best_step"], state["best_state"]
    result.final = dict(state["final"])
    return state["step"], state["best_val"], state["train_seconds"], state["total_tokens"]
