"""``dropout-lab``: run, validate and inspect studies; list plugins; open the MLflow UI.

Heavy libraries (torch, optuna, mlflow) are imported inside the commands that need them, so that
``--help`` and ``validate`` answer at once.
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path
import sys
from typing import TYPE_CHECKING
from typing import Annotated
from typing import NoReturn

import typer

from framework.cli.common import Arm
from framework.cli.common import Artifacts
from framework.cli.common import Home
from framework.cli.common import Overrides
from framework.cli.common import PluginPaths
from framework.cli.common import Storage
from framework.cli.common import TrackingUri
from framework.cli.common import exit_on_failure
from framework.cli.common import fail
from framework.cli.common import line_display
from framework.cli.common import load
from framework.cli.common import load_existing_study
from framework.cli.common import print_error
from framework.cli.common import quiet_libraries
from framework.cli.common import run_copies_of
from framework.cli.common import select_arm
from framework.errors import SpecError


if TYPE_CHECKING:
    from collections.abc import Callable

    from framework.config import LoadedSpec
    from framework.tracking import Locations


app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Declarative experiments for dropout research: study YAML -> Optuna -> MLflow.",
)
plugins_app = typer.Typer(no_args_is_help=True, help="List and describe registered components.")
app.add_typer(plugins_app, name="plugins")
ContinueChanged = Annotated[bool, typer.Option(
    "--continue-changed", help="Continue the study even if the spec differs from the one it was "
    "run with (recorded on the study and its MLflow run).")]


@app.command()
def validate(file: Path, overrides: Overrides = None, plugins: PluginPaths = None) -> None:
    """Check a study file (with overrides) and print the resolved spec.

    Creates no study, run or file, but imports the study's plugins and
    calls its model factory, so their code runs: treat a study file from
    someone else like a Python script.
    """
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
    artifacts: Artifacts = None,
    workers: Annotated[int, typer.Option(
        min=1, help="Worker processes on this machine sharing the study.")] = 1,
    gpus: Annotated[str | None, typer.Option(
        help="GPUs the workers share out, one each in turn (e.g. 0,1,3); default: every GPU "
        "visible (CUDA_VISIBLE_DEVICES).")] = None,
    continue_changed: ContinueChanged = False,
    yes: Annotated[bool, typer.Option(
        # The bound is framework.config.limits.MAX_STEPS (not imported: --help answers at once).
        "--yes", help="Train trials of more than 10,000,000 steps (train.max_steps), which "
        "are refused without it.")] = False,
) -> None:
    """Run (or continue) the study: trials train, report to Optuna and log to MLflow.

    Running it again continues the study; a spec that differs from the one the study was run
    with is refused (listing the changed keys) unless --continue-changed is given. A trial of
    more than 10,000,000 steps is refused (a typo more often than a plan) unless --yes is given.
    """
    loaded = load(file, overrides, plugins)
    if not yes:
        from framework.config.limits import check_training_length

        try:
            check_training_length(loaded.spec, loaded.raw)
        except SpecError as error:
            fail(error.at(loaded.source))
    devices = None
    if gpus is not None:
        import os

        from framework.tuning.workers import CUDA_VISIBLE
        from framework.tuning.workers import parse_gpus

        try:
            devices = parse_gpus(gpus)
        except SpecError as error:
            fail(error)
        if workers == 1:  # trains in this process: set before anything starts CUDA
            os.environ[CUDA_VISIBLE] = devices[0]

    # Before the heavy imports: a URL whose database driver is missing is refused at once.
    from framework.tuning.workers import inherited_locations

    locations = inherited_locations(home, storage, tracking_uri).with_artifacts(artifacts)
    from framework.cli.progress import LineDisplay
    from framework.cli.progress import RunDisplay
    from framework.cli.summary import print_summary
    from framework.tuning.study import run_study

    quiet_libraries()
    if loaded.spec.arms:  # each arm is its own study `<name>.<arm>`
        # The copies are given the options that this invocation was given.
        options = ["--continue-changed"] * continue_changed + ["--yes"] * yes
        options += ["--artifacts", artifacts] if artifacts else []
        copies = functools.partial(run_copies_of, options=options, loaded=loaded, home=home,
                                   workers=workers, storage=storage, tracking_uri=tracking_uri,
                                   plugins=plugins, gpus=devices)
        _run_arms(loaded, locations, workers, continue_changed, copies)
        return
    display = RunDisplay(loaded.spec) if workers == 1 else LineDisplay()
    try:
        with display:
            outcome = run_study(loaded, locations, display, workers=workers,
                                plugin_paths=tuple(plugins or ()),
                                continue_changed=continue_changed, gpus=devices)
    except SpecError as error:  # raised before any run or trial exists
        fail(error)
    except KeyboardInterrupt:
        typer.echo("\ninterrupted: the running trial is marked failed; run the same command "
                   "again to continue the study.", err=True)
        raise typer.Exit(130) from None
    print_summary(outcome, loaded.spec)
    if outcome.nothing_finished(loaded.spec.search.n_trials):
        typer.echo("error: no trial of this run finished (reasons above); its MLflow run is "
                   "marked FAILED", err=True)
        raise typer.Exit(1)
    if outcome.worker_errors:
        typer.echo(f"warning: {len(outcome.worker_errors)} of {workers} workers exited with an "
                   f"error (exit codes {outcome.worker_errors})", err=True)
        if not outcome.budget_met(loaded.spec.search.n_trials):
            raise typer.Exit(1)


def _run_arms(loaded: LoadedSpec, locations: Locations, workers: int, continue_changed: bool,
              start_copies: Callable[..., None]) -> None:
    """Each arm's search, in this process or, with ``--workers N``, in N copies of ``run`` that
    share the arms as N invocations of the command do."""
    from framework.cli.progress import RunDisplay
    from framework.tuning.confirm import check_arms
    from framework.tuning.confirm import run_arms
    from framework.tuning.workers import is_copy

    try:
        if workers > 1:
            check_arms(loaded, locations, continue_changed)  # before any process starts
            start_copies("run")
        else:
            failed = run_arms(loaded, locations, line_display if is_copy() else RunDisplay,
                              continue_changed)
            if failed:
                typer.echo(f"error: no trial of {', '.join(failed)} finished in this run "
                           "(reasons above); run the same command again to retry", err=True)
                raise typer.Exit(1)
    except SpecError as error:
        fail(error)
    except KeyboardInterrupt:
        typer.echo("\ninterrupted: the running trials are marked failed; run the same command "
                   "again to continue the study.", err=True)
        raise typer.Exit(130) from None
    if not is_copy():
        typer.echo(f"ran {len(loaded.spec.arms)} arms; compare them with "
                   f"`dropout-lab confirm {loaded.source}` and "
                   f"`dropout-lab report {loaded.source}`")


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
    threads: Annotated[int | None, typer.Option(
        min=1, help="torch CPU threads; default: the cores free now.")] = None,
    worker_index: Annotated[int | None, typer.Option(
        help="This worker's number, mixed into its sampler seed (give each worker its own to "
        "make a parallel study reproducible); default: the process id.")] = None,
    arm: Arm = None,
    continue_changed: ContinueChanged = False,
) -> None:
    """Join an existing study (in a study with arms, one arm's) as one more worker, on this or
    any machine sharing its storage."""
    import os

    loaded = select_arm(load(file, overrides, plugins), arm)

    from framework.cli.progress import LineDisplay
    from framework.tracking import Locations
    from framework.tuning.study import FINISHED
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
            index = os.getpid() if worker_index is None else worker_index
            finished = run_worker(loaded, locations, parent, display, threads, index,
                                  continue_changed)
    except SpecError as error:
        fail(error)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    done = len(study.get_trials(deepcopy=False, states=FINISHED))
    if finished == 0 and done < loaded.spec.search.n_trials:
        typer.echo("error: no trial of this worker finished (reasons above) and the study's "
                   f"budget is open ({done} of {loaded.spec.search.n_trials} finished)", err=True)
        raise typer.Exit(1)


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
                   "framework.cli.depth", "framework.cli.evaluate", "framework.cli.browse",
                   "framework.cli.inspect", "framework.cli.verdict"]


def entry() -> NoReturn:
    """The ``dropout-lab`` program: :func:`main`, then an end of the process without teardown.

    Once a command is done (runs ended, stores written, output flushed), the interpreter's own
    teardown of the modules torch, MLflow, Optuna and SQLAlchemy loaded takes seconds (1.2-1.75 s
    on a quiet 2-core machine, measured in issue 19, and over 10 s under load) and does nothing
    the command needs: the exit functions libraries registered run, then the process ends.
    """
    try:
        main()
        code: int | str | None = 0
    except SystemExit as stop:
        code = stop.code
    if not isinstance(code, int) and code is not None:  # as the interpreter treats it
        print(code, file=sys.stderr)
        code = 1
    if sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(code)  # a profiler or tracer (cProfile, a debugger) reports at normal exit
    _end_process(code or 0)


def _end_process(code: int) -> NoReturn:
    import atexit
    import os
    import threading

    # The interpreter's own first exit step, no public way to run it early: the threading exit
    # hooks (they stop idle thread pools, such as MLflow's artifact uploaders, which would
    # otherwise wait for work forever), then a join of every non-daemon thread.
    threading._shutdown()
    atexit._run_exitfuncs()  # e.g. logging's final flush
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe: nothing more can be said
            stream.flush()
    os._exit(code)


def main() -> None:
    import importlib

    from framework.tracking.redact import redact_library_output

    for module in COMMAND_MODULES:
        importlib.import_module(module).register(app)
    redact_library_output()  # what libraries log or warn may hold a URL with its password
    try:
        app()
    except SpecError as error:
        # Bad input that a command found past its own checks (e.g. a database URL whose driver
        # is missing, found when the stores are resolved): one line and status 2, as for a spec.
        print_error(error)
        sys.exit(2)
    except Exception as error:  # e.g. an unreachable store; never a password in what is shown
        exit_on_failure(error)
