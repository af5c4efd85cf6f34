"""`dropout-lab ui` serves the study store's runs on 127.0.0.1, and takes its server with it."""

from __future__ import annotations

import contextlib
from dataclasses import replace
import json
import os
from pathlib import Path
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid

from mlflow import MlflowClient
import psutil
import pytest

from framework.tracking import Locations
from framework.tracking import Tracker
from framework.tracking.links import browse_hint
from tests.conftest import TinyRuns
from tests.conftest import invoke
from tests.tracking.test_outage import free_port
from tests.tuning.test_workers import reachable


SECRET = "s3cr3t-pw"


def start_ui(*args: str) -> subprocess.Popen:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.Popen([sys.executable, "-m", "framework.cli", "ui", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_experiment(port: int, name: str, process: subprocess.Popen) -> dict:
    url = (f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/get-by-name?"
           f"experiment_name={name}")
    deadline = time.monotonic() + 300
    while True:
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                return json.load(response)
        except OSError:
            assert process.poll() is None, process.stderr.read()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def stop_and_check(process: subprocess.Popen, port: int) -> tuple[str, str]:
    """SIGTERM to `ui` alone: it exits, nothing serves the port, none of its children lives."""
    children = psutil.Process(process.pid).children(recursive=True)
    assert children, "ui started no server"
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM
    assert not listening(port)
    alive = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], [c.cmdline() for c in alive]
    return out, err


def kill_leftovers(process: subprocess.Popen) -> None:
    """After a failed assertion, leave no server behind."""
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(process.pid).children(recursive=True):
            child.kill()
    process.kill()
    process.communicate()


@pytest.mark.slow
def test_ui_prints_the_runs_view_and_stops_its_server_on_sigterm(tmp_path: Path) -> None:
    home = tmp_path / "mlruns"
    locations = Locations.resolve(home)
    locations.prepare()
    experiment_id = Tracker(locations).experiment_id("shown-in-ui")
    port = free_port()
    process = start_ui("shown-in-ui", "--home", str(home), "--port", str(port))
    try:
        first = process.stdout.readline()
        # MLflow 3 opens an experiment on its GenAI overview: the address names the runs tab.
        assert first.startswith(f"MLflow UI at http://127.0.0.1:{port}/#/experiments/"
                                f"{experiment_id}/runs"), first
        body = wait_for_experiment(port, "shown-in-ui", process)
        assert body["experiment"]["experiment_id"] == experiment_id
        stop_and_check(process, port)
    finally:
        if process.poll() is None:
            kill_leftovers(process)


@pytest.mark.slow
@pytest.mark.db
def test_a_password_in_the_store_url_is_never_printed_nor_on_a_command_line(
        tmp_path: Path) -> None:
    """PostgreSQL (trust auth) takes any password: a real server runs on a URL that has one."""
    import sqlalchemy

    admin = "postgresql://postgres@127.0.0.1:5432/test"
    reason = reachable(admin)
    if reason:
        pytest.skip(reason)
    database = f"dropout_lab_ui_{uuid.uuid4().hex[:8]}"
    engine = sqlalchemy.create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sqlalchemy.text(f"CREATE DATABASE {database}"))
    url = f"postgresql://postgres:{SECRET}@127.0.0.1:5432/{database}"
    port = free_port()
    process = None
    try:
        MlflowClient(url).create_experiment("secret-store")
        process = start_ui("secret-store", "--tracking-uri", url, "--port", str(port))
        first = process.stdout.readline()
        assert first.startswith(f"MLflow UI at http://127.0.0.1:{port}/#/experiments/"), first
        wait_for_experiment(port, "secret-store", process)
        # The user typed the URL on ui's own command line; what ui starts must not repeat it.
        command_lines = [" ".join(p.info["cmdline"] or [])
                         for p in psutil.process_iter(["pid", "cmdline"])
                         if p.info["pid"] != process.pid]
        assert any(f"--port {port}" in line for line in command_lines)
        assert not [line for line in command_lines if SECRET in line]
        out, err = stop_and_check(process, port)
        assert SECRET not in first + out + err
    finally:
        if process is not None and process.poll() is None:
            kill_leftovers(process)
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
        engine.dispose()


def test_ui_without_a_store_or_with_an_unknown_study_exits_2_and_creates_nothing(
        tmp_path: Path, tiny_runs: TinyRuns) -> None:
    home = tmp_path / "nowhere"
    result = invoke("ui", "--home", str(home))
    assert result.exit_code == 2 and "no MLflow store at" in result.stderr, result.output
    assert not home.exists()
    result = invoke("ui", "absent", "--home", str(tiny_runs.home))
    assert result.exit_code == 2, result.output
    # One line that names the home and the studies in it, whose names the user may have meant.
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: no study named 'absent' under {tiny_runs.home}; studies "
                           "here: "), line
    assert {"kept", "searched"} <= set(line.split("studies here: ")[1].split(", "))


def test_the_run_summary_names_the_home_it_used(tmp_path: Path) -> None:
    elsewhere = Locations.resolve(tmp_path / "runs" / "here")
    assert browse_hint("quick", "3", elsewhere) == "dropout-lab ui quick --home runs/here"
    assert browse_hint("quick", "3", Locations.resolve("mlruns")) == "dropout-lab ui quick"
    # No server there: resolving would probe it, and the hint needs only the URL.
    server = replace(elsewhere, tracking_uri=f"http://me:{SECRET}@127.0.0.1:5005")
    assert browse_hint("quick", "3", server) == "http://127.0.0.1:5005/#/experiments/3/runs"
