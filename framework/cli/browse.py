"""``dropout-lab ui`` and ``dropout-lab dashboard``: browse a home's runs (MLflow) or studies
(optuna-dashboard), served on 127.0.0.1 only.

``ui`` starts ``mlflow server`` as a child in its own process group and stops the whole group
(uvicorn workers and huey job consumers included) when it is interrupted or terminated; the store
URI reaches the child through the environment, so a password in it never shows in ``ps``.
``dashboard`` runs optuna-dashboard in this process (an optional extra).
"""

from __future__ import annotations

from collections.abc import Callable
import contextlib
import os
from pathlib import Path
import shlex
import signal
import subprocess
import sys
import time
from typing import Annotated
from typing import Any

import typer

from framework.cli.common import Home
from framework.cli.common import PluginPaths
from framework.cli.common import Storage
from framework.cli.common import TrackingUri
from framework.cli.common import fail
from framework.cli.common import load
from framework.cli.common import quiet_libraries
from framework.errors import SpecError


StudyArgument = Annotated[str | None, typer.Argument(
    help="Study file or study name to open (default: list every study).")]
STOP_GRACE_S = 15.0
"""Seconds the server's processes get to exit after SIGTERM before they are killed."""


def register(app: typer.Typer) -> None:
    app.command()(ui)
    app.command()(dashboard)


def ui(
    study: StudyArgument = None,
    plugins: PluginPaths = None,
    home: Home = Path("mlruns"),
    tracking_uri: TrackingUri = None,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 5000,
) -> None:
    """Serve the MLflow UI of the runs on 127.0.0.1 and print the study's runs table address.

    Ctrl-C (or SIGTERM) stops the server and every process it started.
    """
    from framework.tracking import Locations
    from framework.tracking.links import local_ui
    from framework.tracking.links import ui_base
    from framework.tracking.redact import redact

    locations = Locations.resolve(home, tracking_uri=tracking_uri)
    name = _study_name(study, plugins)
    store = redact(locations.tracking_uri)
    quiet_libraries()
    if locations.tracking_uri.startswith(("http://", "https://")):
        # Runs on a tracking server are already served, by that server.
        _print_addresses(ui_base(locations.tracking_uri), locations.tracking_uri, name)
        return
    _require_store(locations.tracking_uri, "MLflow")
    _print_addresses(local_ui(port), locations.tracking_uri, name, f"  (store: {store})",
                     where=str(home) if tracking_uri is None else None)
    env = {**os.environ, "MLFLOW_BACKEND_STORE_URI": locations.tracking_uri}
    # Job execution serves MLflow's GenAI features (scorers, trace rollups), not runs; without
    # it the server starts no huey consumers (seven processes) and starts sooner.
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    if locations.artifact_root:
        env["MLFLOW_DEFAULT_ARTIFACT_ROOT"] = locations.artifact_root
    command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1",
               "--port", str(port), "--workers", "1"]
    raise typer.Exit(serve(command, env))


def dashboard(
    study: StudyArgument = None,
    plugins: PluginPaths = None,
    home: Home = Path("mlruns"),
    storage: Storage = None,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8080,
) -> None:
    """Serve optuna-dashboard on the Optuna storage, on 127.0.0.1 (optional extra 'dashboard')."""
    try:
        import optuna_dashboard
    except ImportError:
        # This interpreter's pip: a bare `pip` may be another Python's (the system's).
        pip = f"{shlex.quote(sys.executable)} -m pip"
        fail(SpecError("`dropout-lab dashboard` needs the optional extra `dashboard`: "
                       f"{pip} install -e '.[dashboard]' in the project's folder "
                       f"(or {pip} install optuna-dashboard)"))
    import optuna

    from framework.tracking import Locations
    from framework.tracking.redact import redact
    from framework.tuning.storage import make_storage

    locations = Locations.resolve(home, storage)
    name = _study_name(study, plugins)
    _require_store(locations.storage, "Optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rdb = make_storage(locations.storage)
    address = f"http://127.0.0.1:{port}/dashboard"
    if name is not None:
        try:
            address += f"/studies/{rdb.get_study_id_from_name(name)}"
        except KeyError:
            names = sorted(s.study_name for s in rdb.get_all_studies())
            fail(unknown_study(name, str(home) if storage is None else redact(storage), names))
    typer.echo(f"optuna-dashboard at {address}  (storage: {redact(locations.storage)})")
    with contextlib.suppress(KeyboardInterrupt):
        optuna_dashboard.run_server(rdb, host="127.0.0.1", port=port)


def serve(command: list[str], env: dict[str, str]) -> int:
    """Run ``command`` in a process group of its own until it exits or this process is told to
    stop (SIGINT, SIGTERM, SIGHUP); then stop the whole group. Returns the exit status (128 +
    the signal's number when told to stop)."""
    received: list[int] = []

    def forward(signum: int, _frame: Any) -> None:
        if not received:  # a second Ctrl-C while stopping: stopping goes on (SIGKILL at worst)
            received.append(signum)
            raise _Stop

    # The group of its own keeps a terminal's Ctrl-C from reaching the server half-way: this
    # process alone decides when, and stops every process of the group.
    previous = {s: signal.signal(s, forward)
                for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    process: subprocess.Popen | None = None
    try:
        process = subprocess.Popen(command, env=env, start_new_session=True)
        status = process.wait()
    except _Stop:
        status = 128 + received[0]
    finally:
        if process is not None:
            stop_group(process)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return status


class _Stop(Exception):
    """This process was told to stop; its server goes with it."""


def stop_group(process: subprocess.Popen, grace: float = STOP_GRACE_S) -> None:
    """SIGTERM the process group led by ``process``; SIGKILL what is left after ``grace``."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    _wait_until(lambda: not _group_alive(process.pid), grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _group_alive(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs (zombies, already dead, do not count)."""
    import psutil

    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.Error):
            continue
    return False


def _wait_until(done: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        time.sleep(0.2)


def _study_name(study: str | None, plugins: list[str] | None) -> str | None:
    """The study a file names (validated), or ``study`` itself when it is not a file."""
    if study is None or not Path(study).is_file():
        return study
    return load(Path(study), None, plugins).spec.name


def _require_store(url: str, kind: str) -> None:
    """Exit 2 before a server creates an empty embedded store where none is."""
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        fail(SpecError(f"no {kind} store at {url.removeprefix('sqlite:///')}; run a study first "
                       "(dropout-lab run), or pass --home"))


def unknown_study(name: str, where: str, names: list[str]) -> SpecError:
    """The one line for a study name that is not in the store: the studies that are."""
    return SpecError(f"no study named {name!r} under {where}; studies here: "
                     f"{', '.join(names) or 'none'}")


def _print_addresses(base: str, tracking_uri: str, name: str | None, suffix: str = "",
                     where: str | None = None) -> None:
    """The runs table of study ``name``, or of every study, in the UI at ``base``; ``where``
    names the store in messages (default: its URI, without password)."""
    from mlflow import MlflowClient

    from framework.tracking.links import runs_view
    from framework.tracking.redact import redact

    if tracking_uri.startswith(("http://", "https://")):
        # One quick answer or a clear error, not MLflow's minutes of retries.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    client = MlflowClient(tracking_uri)
    try:
        experiments = client.search_experiments(order_by=["name"])
    except Exception as exc:  # a tracking server that does not answer
        fail(SpecError(f"the MLflow store {redact(tracking_uri)} does not answer: "
                       f"{redact(str(exc))[:300]}"))
    if name is not None:
        experiment = next((e for e in experiments if e.name == name), None)
        if experiment is None:
            fail(unknown_study(name, where or redact(tracking_uri),
                               [e.name for e in experiments if e.name != "Default"]))
        typer.echo(f"MLflow UI at {runs_view(base, experiment.experiment_id)}{suffix}")
        return
    typer.echo(f"MLflow UI at {base}{suffix}")
    for experiment in experiments:
        if experiment.name != "Default":
            typer.echo(f"  {experiment.name}: {runs_view(base, experiment.experiment_id)}")
