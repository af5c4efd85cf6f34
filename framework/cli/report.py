"""``dropout-lab report``: a self-contained HTML report of a study and its confirmation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from typing import Any

import typer

from framework.cli.common import Home
from framework.cli.common import Overrides
from framework.cli.common import PluginPaths
from framework.cli.common import Storage
from framework.cli.common import TrackingUri
from framework.cli.common import fail
from framework.cli.common import load
from framework.cli.common import quiet_libraries
from framework.errors import SpecError


def register(app: typer.Typer) -> None:
    app.command()(report)


def report(
    file: Path,
    overrides: Overrides = None,
    by: Annotated[list[str] | None, typer.Option(
        help="Searched parameter (repeatable) whose values group every complete search trial "
        "into the learning curves, one line per group with a band over its seeds (e.g. a grid "
        "of rates x seeds).")] = None,
    plugins: PluginPaths = None,
    home: Home = Path("mlruns"),
    storage: Storage = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Write the study's HTML report (opens offline) and its PNGs; log them to MLflow.

    The page has the confirmation's comparison table, learning curves and dropout rates over
    steps with a band over seeds, Optuna's plots of the search, and the strategies' own figures.
    Files go to --home/reports/<study>/; the table is also printed and written as Markdown.
    """
    loaded = load(file, overrides, plugins)
    from framework.cli.confirm import require_storage
    from framework.cli.confirm import write_tables
    from framework.tracking import Locations

    locations = Locations.resolve(home, storage, tracking_uri)
    require_storage(locations, file)
    quiet_libraries()
    from framework.reporting.html import build_report
    from framework.reporting.trials import trials_text
    from framework.tracking import Tracker

    spec = loaded.spec
    searched = searched_keys(loaded)
    unsearched = [name for name in by or () if name not in searched]
    if unsearched:
        where = "search.space and the arms' spaces" if spec.arms else "search.space"
        fail(SpecError(f"{', '.join(map(repr, unsearched))} is not searched ({where}: "
                       f"{', '.join(searched) or 'empty'})", source=str(file), key="--by"))
    folder = Path(home) / "reports" / spec.name
    try:
        built = build_report(loaded, locations, folder, by)
    except LookupError as error:
        fail(SpecError(f"{error}; run the study first (dropout-lab run)", source=str(file)))
    tracker = Tracker(locations)
    run = report_run(tracker, spec.name)
    if built.pngs:
        tracker.log_artifacts(run, str(built.folder / "figures"), "figures")
    tracker.log_artifact_later(run, str(built.html))  # the page itself: no copy to upload
    for note in built.notes:
        typer.echo(f"note: {note}")
    for figure in built.figures:
        if figure.warn:
            typer.echo(f"warning: {figure.title}: {figure.note}")
    if built.comparison is None:
        typer.echo(trials_text(built.trials, [o.metric for o in spec.search.objectives]),
                   nl=False)
    else:
        write_tables(built.comparison, Path(home), run, locations, "report")
    tracker.end_run(run, "FINISHED")
    typer.echo(f"report: {built.html} ({len(built.figures)} figures, {len(built.pngs)} PNGs, "
               f"{len(built.images)} strategy images); logged to MLflow run {run}")


def searched_keys(loaded: Any) -> list[str]:
    """The keys the study searches: its space's and, in a study with arms, every arm's."""
    from framework.tuning.confirm import arm_loaded

    spaces = [loaded.spec.search.space] + [arm_loaded(loaded, arm).spec.search.space
                                           for arm in loaded.spec.arms or {}]
    return list(dict.fromkeys(key for space in spaces for key in space))


def report_run(tracker: Any, study: str) -> str:
    """The study's one ``report`` run, emptied for this report's files; created on first use.

    Each report replaces the last one in MLflow instead of adding a run per report.
    """
    from framework.tracking.records import delete_artifacts

    experiment_id = tracker.experiment_id(study)
    found = tracker.client.search_runs(
        [experiment_id], f"tags.dropout_lab.role = 'report' and tags.dropout_lab.study = '{study}'",
        max_results=1, order_by=["attributes.start_time ASC"])
    if not found:
        return tracker.start_run(experiment_id, "report",
                                 {"dropout_lab.study": study, "dropout_lab.role": "report"})
    run_id = found[0].info.run_id
    delete_artifacts(tracker, run_id)  # figures this report may no longer draw
    tracker.client.update_run(run_id, status="RUNNING")
    return run_id

