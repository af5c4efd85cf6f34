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
) -> None:
    """Run (or continue) the study: trials train, report to Optuna and log to MLflow."""
    loaded = load(file, overrides, plugins)
    from framework.cli.progress import RunDisplay
    from framework.cli.summary import print_summary
    from framework.tracking import Locations
    from framework.tuning.study import run_study

    quiet_libraries()
    locations = Locations.resolve(home, storage, tracking_uri)
    display = RunDisplay(loaded.spec)
    try:
        with display:
            outcome = run_study(loaded, locations, display)
    except KeyboardInterrupt:
        typer.echo("\ninterrupted: the running trial is marked failed; run the same command "
                   "again to continue the study.", err=True)
        raise typer.Exit(130) from None
    print_summary(outcome, loaded.spec)


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
COMMAND_MODULES = ["framework.cli.compare"]


def main() -> None:
    import importlib

    for module in COMMAND_MODULES:
        importlib.import_module(module).register(app)
    app()
