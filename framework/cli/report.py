"""``dropout-lab report``: a self-contained HTML report of a study and its confirmation."""

from __future__ import annotations

from pathlib import Path

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
    from framework.tracking import Tracker

    spec = loaded.spec
    folder = Path(home) / "reports" / spec.name
    try:
        built = build_report(loaded, locations, folder)
    except LookupError as error:
        fail(SpecError(f"{error}; run the study first (dropout-lab run)", source=str(file)))
    tracker = Tracker(locations)
    run = tracker.start_run(tracker.experiment_id(spec.name), "report",
                            {"dropout_lab.study": spec.name, "dropout_lab.role": "report"})
    if built.pngs:
        tracker.log_artifacts(run, str(built.folder / "figures"), "figures")
    tracker.log_artifacts(run, str(_only(built.html)))
    for note in built.notes:
        typer.echo(f"note: {note}")
    if built.comparison is not None:
        write_tables(built.comparison, Path(home), run, locations, "report")
    tracker.end_run(run, "FINISHED")
    typer.echo(f"report: {built.html} ({len(built.figures)} figures, {len(built.pngs)} PNGs, "
               f"{len(built.images)} strategy images); logged to MLflow run {run}")


def _only(path: Path) -> Path:
    """A folder holding just ``path`` (the tracker uploads folders), next to it."""
    import shutil

    folder = path.parent / "html"
    folder.mkdir(exist_ok=True)
    shutil.copy2(path, folder / path.name)
    return folder
