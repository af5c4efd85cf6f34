"""LayerDrop: skip whole layers in training, then prune to any depth at inference.

Fan, Grave and Joulin, "Reducing Transformer Depth on Demand with Structured Dropout", ICLR 2020.
In training every layer of the model's stack is skipped with probability p, one draw per layer per
forward pass, with no rescaling; a skipped layer does no forward and no backward. A model trained
this way can be pruned at inference to a sub-network of any depth without fine-tuning. The paper
recommends p = 0.2, or 0.5 when pruning to half the depth or less; p = 0 is the model trained
without LayerDrop (the comparison arm), swept and reported the same way.

After training, the best model is evaluated at every depth: val loss and inference throughput per
depth go to ``depth_sweep.csv`` / ``.md`` and ``depth_sweep.png`` in the trial's MLflow run, and
the final metrics ``val_loss_depth_<k>`` (for the ``prune`` selector), ``val_loss_half_depth``,
``val_loss_mean_depth`` and ``half_depth_speedup``. Layer indices are 0-based. Its rate ``p`` may
be driven by any schedule of the trial (``drives: layerdrop.p``).
"""

from __future__ import annotations

import csv
import math
import statistics
import time
from typing import TYPE_CHECKING
from typing import Any
from typing import ClassVar
from typing import Literal

from pydantic import Field
from pydantic import model_validator

from framework.contract import StrategyNeeds
from framework.registry import register_strategy
from framework.strategies.base import DrivenRateStrategy
from framework.strategies.base import StrategyConfig
from framework.strategies.base import TrainedModel


if TYPE_CHECKING:
    from collections.abc import Callable

    from torch import nn

SelectorName = Literal["every_other", "first", "last", "search"]


class LayerDropConfig(StrategyConfig):
    """Skip whole layers with rate p in training; prune to any depth after (Fan et al. 2020)."""

    name: Literal["layerdrop"] = "layerdrop"
    p: float = Field(0.2, ge=0.0, le=1.0)
    """Layer drop rate (of every layer, or of the last one with the ``linear`` profile); 0 = off."""
    profile: Literal["uniform", "linear"] = "uniform"
    """Per-layer rates: the same p everywhere, or p * l / L rising with depth (stochastic depth)."""
    prune: SelectorName = "every_other"
    """Which layers a pruned model keeps: spread evenly, the first k, the last k, or searched on
    validation data (greedy backward elimination)."""
    inference_depth: int | None = Field(None, ge=1)
    """Depth of the model used for inference (final splits, throughput); default: every layer."""
    inference_layers: list[int] | None = Field(None, min_length=1)
    """Explicit 0-based indices of the layers to keep at inference (overrides the depth)."""
    sweep: list[SelectorName] = Field(default_factory=lambda: ["every_other"])
    """Selectors evaluated at every depth after training (table, plot, final metrics)."""
    throughput_repeats: int = Field(2, ge=0)
    """Timed passes over the val batches per depth for tokens/s (median); 0 skips timing."""

    METRICS: ClassVar[tuple[str, ...]] = (
        "val_loss_half_depth", "val_loss_mean_depth", "half_depth_speedup",
    )

    @model_validator(mode="after")
    def _one_inference_choice(self) -> LayerDropConfig:
        if self.inference_depth is not None and self.inference_layers is not None:
            raise ValueError("give inference_depth or inference_layers, not both")
        return self

    def needs(self) -> StrategyNeeds:
        # The whole batch skips the same layers: a per-batch draw.
        return StrategyNeeds(skip_layers=True, layers=tuple(self.inference_layers or ()),
                             masks="per_batch", rates=("p",))


@register_strategy("layerdrop", config=LayerDropConfig)
class LayerDrop(DrivenRateStrategy):
    """Wraps the model's ``layers`` in a :class:`~framework.layers.layerdrop.LayerDropList`.

    Example::

        dropout:
          - {name: layerdrop, p: 0.2, sweep: [every_other, search]}
    """

    config: LayerDropConfig

    def __init__(self, config: LayerDropConfig):
        super().__init__(config)
        self.p = config.p
        """The current rate: the config's, or what a schedule driving it set last."""

    def attach(self, model: nn.Module) -> None:
        from framework.layers.layerdrop import wrap_layer_stack

        n = len(getattr(model, "layers", ()))
        capabilities = model.capabilities() if hasattr(model, "capabilities") else None
        # Layers whose input and output widths differ always run (the spec check refuses a
        # model where no layer can be skipped).
        self.fixed = capabilities.fixed_layers if capabilities is not None else frozenset()
        self.stack = wrap_layer_stack(model, self._layer_rates(n))

    def _layer_rates(self, n: int) -> list[float]:
        from framework.layers.layerdrop import layer_rates

        rates = layer_rates(n, self.p, self.config.profile)
        return [0.0 if i in self.fixed else rate for i, rate in enumerate(rates)]

    def rate_changed(self) -> None:
        stack = getattr(self, "stack", None)
        if stack is not None:
            stack.rates = self._layer_rates(len(stack))

    def log_values(self) -> dict[str, float]:
        stack = getattr(self, "stack", None)
        if stack is None:
            return {}
        values = {"layerdrop/p": self.p}
        if stack.layers_seen:
            values["layerdrop/kept_fraction"] = stack.layers_run / stack.layers_seen
        stack.reset_counts()
        return values

    def inference_layers(self, n: int, score: Callable[[list[int]], float] | None = None
                         ) -> list[int] | None:
        """The 0-based layers kept at inference, or None for all of them."""
        from framework.models import pruning

        fixed = getattr(self, "fixed", frozenset())
        if self.config.inference_layers is not None:
            return pruning.explicit(n, self.config.inference_layers)
        depth = self.config.inference_depth
        if depth is None or depth >= n:
            return None
        if self.config.prune == "search" and score is not None:
            return pruning.search_on_valid(n, score, depth, fixed)[depth]
        # ``for_inference`` has no validation data: ``search`` then spreads the layers evenly.
        selector = "every_other" if self.config.prune == "search" else self.config.prune
        return pruning.select(selector, n, depth, fixed)

    def for_inference(self, model: nn.Module) -> nn.Module:
        from framework.models.pruning import keep_layers

        kept = self.inference_layers(len(model.layers))
        return model if kept is None else keep_layers(model, kept)

    def after_training(self, trained: TrainedModel) -> dict[str, float]:
        """Evaluate the best model at every depth; write the table and plot; return metrics."""
        kept = self.inference_layers(len(trained.model.layers))
        best = trained.artifact_dir / "best.pt"
        if kept is not None and best.exists():
            from framework.models.pruning import prune_checkpoint

            # The inference model as its own smaller checkpoint, loadable as an ordinary model.
            prune_checkpoint(best, trained.artifact_dir / "pruned.pt", kept)
        if not self.config.sweep:
            return {}
        rows = depth_sweep(trained, self.config.sweep, self.config.throughput_repeats,
                           getattr(self, "fixed", frozenset()))
        write_table(rows, trained.artifact_dir)
        plot_sweep(rows, trained.artifact_dir, title=f"LayerDrop p={self.config.p}")
        return sweep_metrics(rows, self.config.prune if self.config.prune in self.config.sweep
                             else self.config.sweep[0])


def depth_sweep(trained: TrainedModel, selectors: list[str], repeats: int,
                fixed: frozenset[int] = frozenset()) -> list[dict[str, Any]]:
    """One row per (selector, depth): layers kept, val loss and tokens/s of the pruned model.

    Layers in ``fixed`` are kept at every depth.
    """
    from framework.models import pruning

    n = len(trained.model.layers)
    scores: dict[tuple[int, ...], float] = {}

    def score(kept: list[int]) -> float:
        key = tuple(kept)
        if key not in scores:
            scores[key] = trained.evaluate(pruning.keep_layers(trained.model, kept))["val_loss"]
        return scores[key]

    rows = []
    speed: dict[int, float] = {}  # the cost of a pruned model depends on its depth only
    for selector in selectors:
        if selector == "search":
            chosen = pruning.search_on_valid(n, score, fixed=fixed)
        else:
            chosen = {k: pruning.select(selector, n, k, fixed) for k in pruning.depths(n, fixed)}
        for depth in sorted(chosen):
            kept = chosen[depth]
            if depth not in speed:
                speed[depth] = _tokens_per_sec(trained, pruning.keep_layers(
                    trained.model, kept), repeats)
            rows.append({"selector": selector, "depth": depth,
                         "layers_kept": " ".join(map(str, kept)), "val_loss": score(kept),
                         "tokens_per_sec": speed[depth]})
    return rows


def _tokens_per_sec(trained: TrainedModel, model: nn.Module, repeats: int) -> float:
    """Median tokens/s of ``repeats`` timed passes of ``trained.evaluate`` (forward in eval mode).

    The same val batches as the loss; a forward pre-hook counts their tokens.
    """
    if repeats == 0:
        return math.nan
    tokens = 0

    def count(module: nn.Module, args: tuple[Any, ...]) -> None:
        nonlocal tokens
        tokens += args[0].n_tokens

    handle = model.register_forward_pre_hook(count)
    rates = []
    try:
        trained.evaluate(model)  # warm-up: allocation and kernel choice are not timed
        for _ in range(repeats):
            tokens = 0
            start = time.perf_counter()
            trained.evaluate(model)
            rates.append(tokens / (time.perf_counter() - start))
    finally:
        handle.remove()
    return statistics.median(rates)


def sweep_metrics(rows: list[dict[str, Any]], selector: str) -> dict[str, float]:
    """Final metrics of the sweep with ``selector``: loss at every depth, half depth, the mean."""
    mine = {row["depth"]: row for row in rows if row["selector"] == selector}
    n = max(mine)
    half = mine[max(n // 2, min(mine))]  # layers that must always run may forbid half depth
    metrics = {f"val_loss_depth_{d}": row["val_loss"] for d, row in sorted(mine.items())}
    metrics["val_loss_half_depth"] = half["val_loss"]
    metrics["val_loss_mean_depth"] = statistics.fmean(r["val_loss"] for r in mine.values())
    metrics["half_depth_speedup"] = half["tokens_per_sec"] / mine[n]["tokens_per_sec"]
    return metrics


def write_table(rows: list[dict[str, Any]], folder: Any) -> None:
    """``depth_sweep.csv`` and ``depth_sweep.md`` in ``folder``."""
    fields = ["selector", "depth", "layers_kept", "val_loss", "tokens_per_sec"]
    with open(folder / "depth_sweep.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| " + " | ".join(fields) + " |", "|" + "---|" * len(fields)]
    for row in rows:
        lines.append(f"| {row['selector']} | {row['depth']} | {row['layers_kept']} | "
                     f"{row['val_loss']:.4f} | {row['tokens_per_sec']:.0f} |")
    (folder / "depth_sweep.md").write_text("\n".join(lines) + "\n")


def plot_sweep(rows: list[dict[str, Any]], folder: Any, title: str) -> None:
    """``depth_sweep.png``: val loss against depth, one line per selector."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for selector in dict.fromkeys(row["selector"] for row in rows):
        mine = sorted((r["depth"], r["val_loss"]) for r in rows if r["selector"] == selector)
        ax.plot(*zip(*mine, strict=True), marker="o", label=selector)
    ax.set_xlabel("layers kept at inference")
    ax.set_ylabel("val loss")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(folder / "depth_sweep.png", dpi=120)
    plt.close(fig)
