"""``dropout-lab``: run, validate and inspect studies; list plugins; open the MLflow UI.

Heavy libraries (torch, optuna, mlflow) are imported inside the commands that need them, so that
``--help`` and ``validate`` answer at once.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
import sys
from typing import Annotated

import typer

from framework.cli.common import Home
from framework.cli.common import Overrides
from framework.cli.common import PluginPaths
from framework.cli.common import Storage
from framework.cli.common import TrackingUri
from framework.cli.common import fail
from framework.cli.common import load
from framework.cli.common import load_existing_study
from framework.cli.common import quiet_libraries
from framework.errors import SpecError


app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Declarative experiments for dropout research: study YAML -> Optuna -> MLflow.",
)
plugins_app = typer.Typer(no_args_is_help=True, help="List and describe registered components.")
app.add_typer(plugins_app, name="plugins")

@app.command()
def validate(file: Path, overrides: Overrides = None, plugins: PluginPaths = None) -> None:
    """Check a study file (with overrides) and print the resolved spec; creates nothing."""
    loaded = load(file, overrides, plugins)
    typer.echo(loaded.to_yaml(), nl=False)


@app.command()
def run(
    file: Path,
    overrides: Overrides = None,
    plugins: PluginPaths = None,
    home: Home = Path("mlruns"),
    storage: Storage = None,
    tracking_uri: TrackingUri = None,
    workers: Annotated[int, typer.Option(
        min=1, help="Worker processes on this machine sharing the study.")] = 1,
) -> None:
    """Run (or continue) the study: trials train, report to Optuna and log to MLflow."""
    loaded = load(file, overrides, plugins)
    from framework.cli.progress import LineDisplay
    from framework.cli.progress import RunDisplay
    from framework.cli.summary import print_summary
    from framework.tracking import Locations
    from framework.tuning.study import run_study

    quiet_libraries()
    locations = Locations.resolve(home, storage, tracking_uri)
    if loaded.spec.arms:  # each arm is its own study `<name>.<arm>`
        from framework.tuning.confirm import run_arms

        run_arms(loaded, locations, RunDisplay)
        typer.echo(f"ran {len(loaded.spec.arms)} arms; compare them with "
                   f"`dropout-lab confirm {file}` and `dropout-lab report {file}`")
        return
    display = RunDisplay(loaded.spec) if workers == 1 else LineDisplay()
    try:
        with display:
            outcome = run_study(loaded, locations, display, workers=workers,
                                plugin_paths=tuple(plugins or ()))
    except KeyboardInterrupt:
        typer.echo("\ninterrupted: the running trial is marked failed; run the same command "
                   "again to continue the study.", err=True)
        raise typer.Exit(130) from None
    print_summary(outcome, loaded.spec)
    if outcome.worker_errors:
        typer.echo(f"warning: {len(outcome.worker_errors)} of {workers} workers exited with an "
                   f"error (exit codes {outcome.worker_errors})", err=True)
        if not outcome.budget_met(loaded.spec.search.n_trials):
            raise typer.Exit(1)


@app.command()
def worker(
    file: Path,
    overrides: Overrides = None,
    plugins: PluginPaths = None,
    home: Home = Path("mlruns"),
    storage: Storage = None,
    tracking_uri: TrackingUri = None,
    parent_run_id: Annotated[str | None, typer.Option(
        help="MLflow run to nest trials under; default: the study's latest parent run.")] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="torch CPU threads.")] = None,
    seed_offset: Annotated[int | None, typer.Option(
        help="Added to the sampler seed; default: from the process id.")] = None,
) -> None:
    """Join an existing study as one more worker (on this or any machine sharing its storage)."""
    import os

    loaded = load(file, overrides, plugins)

    from framework.cli.progress import LineDisplay
    from framework.tracking import Locations
    from framework.tuning.study import PARENT_RUN_ATTR
    from framework.tuning.study import run_worker
    from framework.tuning.workers import STORAGE_ENV
    from framework.tuning.workers import TRACKING_ENV

    quiet_libraries()
    locations = Locations.resolve(home, storage or os.environ.get(STORAGE_ENV),
                                  tracking_uri or os.environ.get(TRACKING_ENV))
    study = load_existing_study(loaded, locations)
    parent = parent_run_id or study.user_attrs.get(PARENT_RUN_ATTR)
    try:
        with LineDisplay() as display:
            offset = os.getpid() if seed_offset is None else seed_offset
            run_worker(loaded, locations, parent, display, threads, offset)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


@app.command()
def ui(home: Home = Path("mlruns"), tracking_uri: TrackingUri = None,
       port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 5000) -> None:
    """Start the MLflow UI on the study store, bound to 127.0.0.1."""
    import subprocess

    from framework.tracking import Locations

    locations = Locations.resolve(home, tracking_uri=tracking_uri)
    command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1",
               "--port", str(port), "--backend-store-uri", locations.tracking_uri]
    if locations.artifact_root:
        command += ["--default-artifact-root", locations.artifact_root]
    typer.echo(f"MLflow UI at http://127.0.0.1:{port}  (store: {locations.tracking_uri})")
    with contextlib.suppress(KeyboardInterrupt):
        subprocess.run(command, check=False)


@plugins_app.command("list")
def plugins_list(plugins: PluginPaths = None) -> None:
    """Registered strategies, models and datasets: name, source and one-line doc."""
    from framework.cli.plugins import print_plugin_list

    try:
        print_plugin_list(plugins or [])
    except SpecError as error:
        fail(error)


@plugins_app.command("show")
def plugins_show(name: str, plugins: PluginPaths = None) -> None:
    """The schema of one component: fields, types, defaults, bounds and docs."""
    from framework.cli.plugins import print_plugin_schema

    try:
        print_plugin_schema(name, plugins or [])
    except SpecError as error:
        fail(error)


# Commands that live in their own modules: each module has ``register(app)``.
COMMAND_MODULES = ["framework.cli.compare", "framework.cli.confirm", "framework.cli.report",
                   "framework.cli.depth", "framework.cli.evaluate"]


def main() -> None:
    import importlib

    for module in COMMAND_MODULES:
        importlib.import_module(module).register(app)
    app()
