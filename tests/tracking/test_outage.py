"""A tracking server that goes away: training goes on, metrics arrive when it is back."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
import signal
import socket
import subprocess
import sys
import time

from mlflow import MlflowClient
import pytest

from framework.tracking import Locations
from framework.tracking import Tracker
from framework.tracking.tracker import TrackingUnavailable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home: Path, port: int) -> subprocess.Popen:
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{home / 'mlflow.db'}",
         "--default-artifact-root", (home / "artifacts").as_uri(), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,  # the server starts helper processes: stop them as a group
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server
        except OSError:
            time.sleep(0.5)
    stop_server(server)
    pytest.skip("mlflow server did not start within 2 minutes")


def stop_server(server: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=60)


@pytest.mark.slow
def test_metrics_logged_during_an_outage_arrive_when_the_server_is_back(tmp_path: Path) -> None:
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    server = start_server(tmp_path, port)
    try:
        tracker = Tracker(Locations.resolve(tmp_path, tracking_uri=uri), timeout=300)
        run = tracker.start_run(tracker.experiment_id("outage"), "r", {})
        tracker.log_metrics(run, {"val_loss": 3.0}, step=1)
        stop_server(server)
        started = time.monotonic()
        tracker.log_metrics(run, {"val_loss": 2.0}, step=2)  # kept, not raised
        tracker.log_metrics(run, {"val_loss": 1.0}, step=3)
        assert time.monotonic() - started < 30, "logging must not block training"
        assert len(tracker._pending) == 2
        server = start_server(tmp_path, port)
        tracker.end_run(run, "FINISHED")
        client = MlflowClient(uri)
        history = client.get_metric_history(run, "val_loss")
        assert [(m.step, m.value) for m in history] == [(1, 3.0), (2, 2.0), (3, 1.0)]
        assert client.get_run(run).info.status == "FINISHED"
    finally:
        stop_server(server)


def test_an_unreachable_store_fails_with_a_clear_reason_after_the_timeout(tmp_path: Path) -> None:
    uri = f"http://user:pw@127.0.0.1:{free_port()}"  # nothing listens there
    tracker = Tracker(Locations.resolve(tmp_path, tracking_uri=uri), timeout=1)
    tracker.log_metrics("some-run", {"val_loss": 1.0}, step=1)  # kept while within the timeout
    time.sleep(1.2)
    with pytest.raises(TrackingUnavailable, match="unreachable") as info:
        tracker.log_metrics("some-run", {"val_loss": 0.5}, step=2)
    assert "pw" not in str(info.value) and "user:***@" in str(info.value)
