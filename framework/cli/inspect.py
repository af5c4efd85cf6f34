"""``dropout-lab inspect``: what the study's strategies will touch in its model, before a run.

The model is built as a trial builds it (with the study's data, which give the vocabulary size or
the classes), the study's strategies (with ``--arm``, one arm's) are attached and set to their
step-0 rates, and three tables are printed: every dropout site (its name in the model, kind, how
it is reached, the model's own rate, the rate at step 0 and the strategy that owns it), the layer
stack LayerDrop and LR-Drop work on, and what the model offers to strategies. Nothing is trained
or written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from framework.cli.common import Arm
from framework.cli.common import Overrides
from framework.cli.common import PluginPaths
from framework.cli.common import load
from framework.cli.common import select_arm


def register(app: typer.Typer) -> None:
    app.command()(inspect)


def inspect(file: Path, overrides: Overrides = None, plugins: PluginPaths = None,
            arm: Arm = None) -> None:
    """Show the model's dropout sites (kind, rate, strategy) and layer stack; trains nothing.

    Like validate, it imports the study's plugins and calls its model factory: that code runs.
    """
    loaded = load(file, overrides, plugins)
    arms = list(loaded.spec.arms or {})
    spec = (loaded if arm is None and arms else select_arm(loaded, arm)).spec
    from rich.console import Console

    from framework import registry
    from framework.strategies.stack import StrategyStack
    from framework.training.run import load_dataset

    dataset = load_dataset(spec)
    model = registry.create_model(spec.model, dataset.info)
    stack = StrategyStack.from_configs(spec.dropout)
    stack.attach(model, dataset.info)
    stack.on_step(0, spec.train.max_steps)
    console = Console()
    if arm is None and arms:  # each arm attaches its own strategies
        console.print(f"[yellow]the study has arms ({', '.join(arms)}): this is its spec before "
                      "any arm; --arm NAME shows one arm's[/]")
    console.print(f"[bold]{spec.model.name}[/] ({type(model).__name__}, "
                  f"{sum(p.numel() for p in model.parameters()):,} parameters) on "
                  f"{spec.data.name}")
    console.print(site_table(model))
    console.print(stack_table(model))
    capabilities = model.capabilities() if hasattr(model, "capabilities") else None
    if capabilities is not None:
        console.print(_two_columns("offers to strategies", capabilities.describe()))
    left_alone = getattr(model, "left_alone", [])
    if left_alone:
        console.print(f"[yellow]left as they are[/] (not nn.Dropout, so no strategy reaches "
                      f"them): {', '.join(left_alone)}")


def site_table(model: Any) -> Any:
    """Every dropout site: where it is, its kind, how it is reached, rates and owner."""
    from rich.table import Table

    from framework.models.adapter import RateAttributeSite
    from framework.models.sites import DropoutSite

    table = Table(title="dropout sites", caption="own p: the model's rate, kept by a site that "
                  "no strategy claims; p at step 0: with the study's strategies attached")
    table.add_column("site", overflow="fold", ratio=1)
    for column in ("kind", "via", "own p", "p at step 0", "strategy"):
        table.add_column(column, no_wrap=True)
    for name, site in model.named_modules():
        if not isinstance(site, DropoutSite):
            continue
        via = ("attribute" if isinstance(site, RateAttributeSite)
               else "nn.Dropout" if hasattr(site, "where") else "site")
        now = type(site.op).__name__ if site.op is not None else f"{site.p:g}"
        table.add_row(getattr(site, "where", name), site.kind, via, f"{site.original_p:g}", now,
                      site.owner or "-")
    if not table.rows:
        table.add_row("(none)", "", "", "", "", "")
    return table


def stack_table(model: Any) -> Any:
    """The layer stack: its path, depth, layer type and what LayerDrop made of it."""
    layers = getattr(model, "layers", None)
    if layers is None:
        return _two_columns("layer stack", {"layer stack": "none (LayerDrop and the layer-wise "
                                            "terms of LR-Drop are refused)"})
    path = getattr(model, "stack_path", None) or "layers"
    rates = getattr(layers, "rates", None)
    rows = {"path": path, "layers": str(len(layers)),
            "layer type": ", ".join(sorted({type(layer).__name__ for layer in layers._modules
                                            .values()})),
            "skipped by": (f"LayerDrop, rates {[round(r, 4) for r in rates]}" if rates
                           else "nothing (no LayerDrop in the study)")}
    return _two_columns("layer stack", rows)


def _two_columns(title: str, rows: dict[str, str]) -> Any:
    from rich.table import Table

    table = Table(title=title, show_header=False)
    for label, value in rows.items():
        table.add_row(label, value)
    return table
