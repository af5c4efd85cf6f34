"""``dropout-lab depth``: val loss at every pruned depth, one line per group (LayerDrop studies)."""

from __future__ import annotations

from pathlib import Path
import shutil
from typing import Annotated
from typing import Any

import typer

from framework.cli.common import Arm
from framework.cli.common import Home
from framework.cli.common import Overrides
from framework.cli.common import PluginPaths
from framework.cli.common import Storage
from framework.cli.common import TrackingUri
from framework.cli.common import fail
from framework.cli.common import load
from framework.cli.common import load_existing_study
from framework.cli.common import quiet_libraries
from framework.cli.common import select_arm
from framework.cli.common import write_markdown
from framework.errors import SpecError


def register(app: typer.Typer) -> None:
    app.command()(depth)
    app.command()(prune)


def depth(
    file: Path,
    overrides: Overrides = None,
    by: Annotated[str, typer.Option(help="Parameter whose values are the lines.")
                  ] = "dropout.0.p",
    scratch: Annotated[Path | None, typer.Option(
        help="Study file of models trained from scratch at each depth (a grid over "
        "model.n_layer, run in the same --home): their val loss is one more line.")] = None,
    arm: Arm = None,
    markdown: Annotated[Path | None, typer.Option(
        "--markdown", help="Also write the table as Markdown to this file, and the plot "
        "beside it (same name, .png).")] = None,
    plugins: PluginPaths = None,
    home: Home = Path("mlruns"),
    storage: Storage = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Table and plot of val loss against layers kept (mean ± s.e. over seeds) per group."""
    loaded = select_arm(load(file, overrides, plugins), arm)
    from rich.console import Console

    from framework.reporting.depth import depth_table
    from framework.reporting.depth import plot
    from framework.reporting.depth import to_csv
    from framework.reporting.depth import to_markdown
    from framework.tracking import Locations
    from framework.tracking import Tracker

    quiet_libraries()
    spec = loaded.spec
    locations = Locations.resolve(home, storage, tracking_uri)
    study = load_existing_study(loaded, locations)
    table = depth_table(study.get_trials(deepcopy=False), by)
    if not table:
        typer.echo("no complete trial reports val_loss_depth_<k> (is `layerdrop` in the study?)",
                   err=True)
        raise typer.Exit(1)
    if scratch is not None:
        scratch_loaded = load(scratch, [], plugins)
        scratch_trials = load_existing_study(scratch_loaded, locations).get_trials(deepcopy=False)
        column = scratch_table(scratch_trials, scratch_loaded.spec.model.n_layer)
        if column:
            table[SCRATCH] = column
        else:
            typer.echo(f"note: {scratch} has no complete trial yet: no from-scratch line",
                       err=True)
    text = to_markdown(table, by)
    Console().print(text, markup=False)
    out = Path(home) / "reports" / f"{spec.name}-depth"
    out.mkdir(parents=True, exist_ok=True)
    (out / "depth.md").write_text(text)
    (out / "depth.csv").write_text(to_csv(table, by))
    plot(table, by, out / "depth.png", f"{spec.name}: val loss of pruned models")
    tracker = Tracker(locations)
    run = tracker.start_run(tracker.experiment_id(spec.name), "depth",
                            {"dropout_lab.study": spec.name, "dropout_lab.role": "depth"})
    tracker.log_artifacts(run, str(out))
    tracker.end_run(run, "FINISHED")
    typer.echo(f"written {out}/depth.{{md,csv,png}} and logged to MLflow run {run}")
    if markdown is not None:
        write_markdown(markdown, text)
        shutil.copyfile(out / "depth.png", markdown.with_suffix(".png"))


SCRATCH = "from scratch"
"""The line of the models trained at each depth from the start (Fan et al. 2020, table 2)."""


def scratch_table(trials: list[Any], default_depth: int) -> dict[int, Any]:
    """Val loss (best checkpoint) per depth over the complete trials of a from-scratch study;
    a trial's depth is its ``model.n_layer`` parameter, else the study's."""
    from optuna.trial import TrialState

    from framework.reporting.stats import summarize

    values: dict[int, list[float]] = {}
    for trial in trials:
        if trial.state == TrialState.COMPLETE and "val_loss" in trial.user_attrs:
            depth = int(trial.params.get("model.n_layer", default_depth))
            values.setdefault(depth, []).append(float(trial.user_attrs["val_loss"]))
    return {depth: summarize(v) for depth, v in sorted(values.items())}


def prune(
    checkpoint: Path,
    out: Path,
    layers: Annotated[str | None, typer.Option(
        help="0-based indices of the layers to keep, comma-separated, e.g. 0,2,4.")] = None,
    depth: Annotated[int | None, typer.Option(help="Number of layers to keep.")] = None,
    keep: Annotated[str, typer.Option(
        help="Selector for --depth: every_other, first or last.")] = "every_other",
) -> None:
    """Write a smaller copy of a checkpoint (e.g. a trial's best.pt) keeping only some layers.

    The checkpoint is read as plain data (tensors, numbers, strings); a file holding other
    objects is refused without being unpickled.
    """
    from framework.models import pruning
    from framework.training.checkpoint import load_checkpoint_file

    if (layers is None) == (depth is None):
        typer.echo("give --layers or --depth", err=True)
        raise typer.Exit(2)
    try:
        raw = load_checkpoint_file(checkpoint, needs=("spec", "model"))["spec"]
    except SpecError as error:
        fail(error)
    try:
        n = pruning.depth_of(pruning.model_spec(raw))
        kept = (pruning.explicit(n, [int(i) for i in layers.split(",")]) if layers is not None
                else pruning.select(keep, n, depth))
    except ValueError as error:
        typer.echo(f"error: {checkpoint}: {error}", err=True)
        raise typer.Exit(2) from None
    pruning.prune_checkpoint(checkpoint, out, kept)
    typer.echo(f"kept layers {kept} of {n}: written {out} ({out.stat().st_size} bytes, "
               f"from {checkpoint.stat().st_size})")
