"""``dropout-lab compare``: a study's trials grouped (e.g. by strategy), metrics over seeds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from framework.cli.common import Arm
from framework.cli.common import Home
from framework.cli.common import MarkdownPath
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
    app.command()(compare)


def compare(
    file: Path,
    overrides: Overrides = None,
    by: Annotated[list[str] | None, typer.Option(
        help="Parameter to group by (repeatable); default: the space's categorical ones.")] = None,
    metric: Annotated[list[str] | None, typer.Option(
        help="Final metric to summarise (repeatable); default: the objectives.")] = None,
    baseline: Annotated[str | None, typer.Option(
        help="PARAM=VALUE (PARAM one of --by, e.g. dropout=none): compare every group with the "
        "group of that value and the same other --by values (difference, 95% CI, t-test paired "
        "over seeds).")] = None,
    arm: Arm = None,
    markdown: MarkdownPath = None,
    plugins: PluginPaths = None,
    home: Home = Path("mlruns"),
    storage: Storage = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Table of mean ± standard error per group of complete trials, and with --baseline each
    group's difference to a baseline group; also Markdown and MLflow."""
    loaded = select_arm(load(file, overrides, plugins), arm)
    from optuna.trial import TrialState
    from rich.console import Console
    from rich.table import Table

    from framework.reporting.compare import default_grouping
    from framework.reporting.compare import header
    from framework.reporting.compare import parse_baseline
    from framework.reporting.compare import row
    from framework.reporting.compare import summarize
    from framework.reporting.compare import to_markdown
    from framework.reporting.compare import with_baseline
    from framework.reporting.comparison import machines
    from framework.tracking import Locations
    from framework.tracking import Tracker

    quiet_libraries()
    spec = loaded.spec
    locations = Locations.resolve(home, storage, tracking_uri)
    study = load_existing_study(loaded, locations)
    groups_by = by or default_grouping(spec.search.space)
    metrics = metric or [o.metric for o in spec.search.objectives]
    groups = summarize(study.get_trials(deepcopy=False), groups_by, metrics)
    try:  # before anything is written
        reference = parse_baseline(baseline, groups_by) if baseline else None
        if reference:
            groups = with_baseline(groups, groups_by, reference)
    except SpecError as error:
        fail(error)
    table = Table(title=f"{spec.name}: mean ± standard error over trials")
    for column in header(groups_by, metrics, reference):
        table.add_column(column)
    for group in groups:
        table.add_row(*row(group, metrics, reference))
    Console().print(table)
    cpu = machines(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    if cpu:
        typer.echo(f"CPU: {cpu}")
    text = to_markdown(groups, groups_by, metrics, reference, cpu)
    out = Path(home) / "reports" / f"{spec.name}-compare.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    tracker = Tracker(locations)
    run = tracker.start_run(tracker.experiment_id(spec.name), "compare",
                            {"dropout_lab.study": spec.name, "dropout_lab.role": "compare"})
    tracker.log_text(run, text, "compare.md")
    tracker.end_run(run, "FINISHED")
    typer.echo(f"written {out} and logged to MLflow run {run}")
    if markdown is not None:
        write_markdown(markdown, text)
