"""What the commands share: option types, loading a spec, and the one way to report bad input."""

from __future__ import annotations

from pathlib import Path
import sys
from typing import TYPE_CHECKING
from typing import Annotated
from typing import NoReturn

import typer

from framework.errors import SpecError


if TYPE_CHECKING:
    from framework.cli.progress import LineDisplay
    from framework.config import LoadedSpec


Overrides = Annotated[
    list[str] | None,
    typer.Argument(help="Dotted overrides, e.g. train.max_steps=200 search.n_trials=3; a key "
                   "with dots goes in brackets: 'search.space[train.lr].low=1e-4'"),
]
PluginPaths = Annotated[
    list[str] | None,
    typer.Option("--plugins", help="Plugin file or folder to load (repeatable)."),
]
Home = Annotated[Path, typer.Option(help="Folder of the embedded Optuna and MLflow stores.")]
Storage = Annotated[
    str | None, typer.Option(help="Optuna storage URL (default: SQLite under --home).")
]
TrackingUri = Annotated[
    str | None, typer.Option(help="MLflow tracking URI (default: SQLite under --home).")
]
Artifacts = Annotated[str | None, typer.Option(
    "--artifacts", help="Where new experiments keep their artifacts: a folder or a URI such as "
    "s3://bucket/path (default: artifacts under --home; a tracking server keeps its own). An "
    "existing experiment keeps its location.")]
MarkdownPath = Annotated[
    Path | None, typer.Option("--markdown", help="Also write the table as Markdown to this file "
                              "(e.g. beside a results page).")
]


def fail(error: SpecError) -> None:
    """Print ``error`` on one line (no traceback) and exit with status 2."""
    print_error(error)
    raise typer.Exit(2)


def print_error(error: Exception) -> None:
    """``error: <file>: <key>: <message>`` on stderr, without rich markup in the message and
    without the passwords of any URL in it."""
    from rich.console import Console
    from rich.markup import escape

    from framework.tracking.redact import redact

    Console(stderr=True, highlight=False).print(
        f"[bold red]error[/]: {escape(redact(str(error)))}", markup=True, soft_wrap=True)


def exit_on_failure(error: Exception) -> NoReturn:
    """End a command that failed other than on bad input, with status 1.

    A store that does not answer (the tracking server, the Optuna database) is one line; any
    other error prints its traceback. Either way, URLs in it show no password.
    """
    if _is_store_failure(error):
        print_error(error)
    else:
        import traceback

        from framework.tracking.redact import redact

        sys.stderr.write(redact("".join(traceback.format_exception(error))))
    sys.exit(1)


def _is_store_failure(error: Exception) -> bool:
    from framework.tracking.tracker import TrackingUnavailable

    # Modules not imported yet cannot have raised: looked up rather than imported.
    mlflow_errors = sys.modules.get("mlflow.exceptions")
    database_errors = sys.modules.get("sqlalchemy.exc")
    return (isinstance(error, TrackingUnavailable)
            or (mlflow_errors is not None and isinstance(error, mlflow_errors.MlflowException))
            or (database_errors is not None
                and isinstance(error, database_errors.OperationalError)))


def load(file: Path, overrides: list[str] | None, plugins: list[str] | None):
    """The validated spec, or exit 2 with the reason."""
    from framework.config import load_spec

    try:
        loaded = load_spec(file, overrides or [], tuple(plugins or ()))
    except SpecError as error:
        fail(error)
    for line in loaded.warnings:
        typer.echo(f"warning: {loaded.source}: {line}", err=True)
    return loaded


Arm = Annotated[str | None, typer.Option(
    "--arm", help="In a study with arms: the arm (its own Optuna study <name>.<arm>).")]


def select_arm(loaded: LoadedSpec, arm: str | None) -> LoadedSpec:
    """The spec of ``arm`` of a study with arms (its study ``<name>.<arm>``), or ``loaded``
    itself for a study without arms; exit 2 when ``--arm`` is missing, unknown or out of place.

    A study with arms has no Optuna study under its own name: each arm's trials are in their own.
    """
    arms = list(loaded.spec.arms or {})
    if arm is None and not arms:
        return loaded
    if arm is None:
        fail(SpecError(f"the study has arms ({', '.join(arms)}), each its own Optuna study: give "
                       "--arm NAME for one arm's trials (`dropout-lab confirm` compares the arms)",
                       source=loaded.source, key="arms"))
    if not arms:
        fail(SpecError(f"--arm {arm}: the study has no arms", source=loaded.source, key="arms"))
    if arm not in arms:
        fail(SpecError(f"--arm {arm}: no such arm (arms: {', '.join(arms)})",
                       source=loaded.source, key="arms"))
    from framework.tuning.confirm import arm_loaded

    try:
        return arm_loaded(loaded, arm)
    except SpecError as error:
        fail(error)


def load_existing_study(loaded, locations):
    """The Optuna study of ``loaded`` in ``locations``, or exit 2 saying how to create it."""
    from framework.tracking.redact import redact
    from framework.tuning.storage import load_if_exists

    missing = SpecError(f"no study {loaded.spec.name!r} in {redact(locations.storage)}; start it "
                        "with `dropout-lab run` first", source=loaded.source, key="name")
    study = load_if_exists(loaded.spec.name, locations.storage)  # an error leaves nothing behind
    if study is None:
        fail(missing)
    return study


def quiet_libraries() -> None:
    import logging
    import warnings

    import mlflow  # noqa: F401  (mlflow sets its logger's level on import; override it after)

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="mlflow")
    warnings.filterwarnings("ignore", category=FutureWarning)


def write_markdown(path: Path, text: str) -> None:
    """Write a table to a ``--markdown`` path (its folder created) and say so."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    typer.echo(f"written {path}")


def line_display(spec: object = None) -> LineDisplay:
    """One line per finished trial: the display of a process that shares its terminal."""
    from framework.cli.progress import LineDisplay

    return LineDisplay()


def run_copies_of(command: str, options: list[str], *, loaded: LoadedSpec, home: Path,
                  workers: int,
                  storage: str | None, tracking_uri: str | None, plugins: list[str] | None,
                  gpus: list[str] | None = None) -> None:
    """``workers`` copies of ``dropout-lab COMMAND`` on this study; exit 1 if one failed (its
    trials, if any were left, run again with the same command)."""
    from framework.tuning.workers import run_copies

    failed = run_copies(command, loaded, home, workers, storage, tracking_uri,
                        tuple(plugins or ()), gpus, options)
    if failed:
        typer.echo(f"error: {len(failed)} of {workers} processes exited with an error (exit "
                   f"codes {failed}); run the same command again to finish", err=True)
        raise typer.Exit(1)
