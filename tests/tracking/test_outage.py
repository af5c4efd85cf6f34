"""A tracking server that goes away: training goes on, metrics arrive when it is back."""

from __future__ import annotations

import contextlib
from dataclasses import replace
import os
from pathlib import Path
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid

from mlflow import MlflowClient
import optuna
from optuna.trial import TrialState
import pytest

from framework.tracking import Locations
from framework.tracking import Tracker
from framework.tracking.tracker import TrackingUnavailable
from tests.conftest import TINY_STUDY
from tests.conftest import write_study


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
        try:  # the port opens before the app is ready: wait for an answer
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=30):
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
    # A server that answered when the command started (resolving probes it) and is gone now.
    tracker = Tracker(replace(Locations.resolve(tmp_path), tracking_uri=uri), timeout=1)
    tracker.log_metrics("some-run", {"val_loss": 1.0}, step=1)  # kept while within the timeout
    time.sleep(1.2)
    with pytest.raises(TrackingUnavailable, match="unreachable") as info:
        tracker.log_metrics("some-run", {"val_loss": 0.5}, step=2)
    assert "pw" not in str(info.value) and "user:***@" in str(info.value)


class Gate:
    """A port that forwards connections to a tracking server while open and refuses them while
    closed: the server going away and coming back, as its clients see it, without the ~20 s
    restart of a real one."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def open(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def close(self) -> None:
        """Refuse new connections and cut the open ones."""
        listener, self._listener = self._listener, None
        with self._lock:
            for sock in [listener, *self._sockets]:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked on it
                sock.close()
            self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
                server = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                return
            with self._lock:
                self._sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
        sink.shutdown(socket.SHUT_WR)


def run_cli(args: list[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.Popen([sys.executable, "-m", "framework.cli", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_server_unreachable_at_the_start_ends_the_run_at_once_creating_nothing(
    tmp_path: Path,
) -> None:
    study = write_study(tmp_path, TINY_STUDY.format(name="unreachable"))
    uri = f"http://user:pw-S3cret@127.0.0.1:{free_port()}"  # nothing listens there
    process = run_cli(["run", str(study), "--tracking-uri", uri], cwd=tmp_path)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 2, "a URL that never answered is refused as bad input"
    assert "Traceback" not in err and "S3cret" not in out + err
    assert err.startswith("error: --tracking-uri: MLflow tracking server http://user:***@127.0.0.1:")
    assert "Connection refused" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.yaml"], "no store, no folder"


@pytest.mark.slow
def test_a_server_gone_for_good_fails_one_trial_and_the_next_run_closes_the_runs_left_open(
    tmp_path: Path, tracking_server,
) -> None:
    gate = Gate(tracking_server.port)
    gate.open()
    name = f"gone-{uuid.uuid4().hex[:8]}"  # the server is shared: a study of its own
    study = write_study(tmp_path, TINY_STUDY.format(name=name))
    args = ["run", str(study), "search.n_trials=1", "search.tracking_timeout=2",
            "train.max_steps=60", "train.eval_every=5",
            "--tracking-uri", f"http://user:S3cret@127.0.0.1:{gate.port}"]
    storage = f"sqlite:///{tmp_path / 'mlruns' / 'optuna.db'}"
    process = run_cli(args, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
            with contextlib.suppress(Exception):
                if optuna.load_study(study_name=name, storage=storage).trials[0] \
                        .intermediate_values:
                    break
        gate.close()  # for good, as far as this invocation can tell
        out, err = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 1, out + err
    assert "Traceback" not in err and "S3cret" not in out + err
    message = err.strip().splitlines()[-1]
    assert message.startswith("error: MLflow tracking store http://user:***@") and \
        "unreachable for" in message and "MLflow runs left RUNNING" in message, err
    trials = optuna.load_study(study_name=name, storage=storage).trials
    assert [t.state for t in trials] == [TrialState.FAIL], "no trial after the store was given up"
    reason = trials[0].user_attrs["fail_reason"]
    assert reason.startswith("TrackingUnavailable") and "unreachable" in reason
    assert "S3cret" not in reason

    gate.open()  # the server answers again: the next invocation closes what was left open
    again = run_cli(args, cwd=tmp_path)
    out, err = again.communicate(timeout=300)
    gate.close()
    assert again.returncode == 0, out + err
    client = MlflowClient(f"http://127.0.0.1:{tracking_server.port}")
    runs = {r.info.run_id: r for r in client.search_runs(
        [client.get_experiment_by_name(name).experiment_id])}
    assert all(r.info.status != "RUNNING" for r in runs.values())
    first_parent, = [r for r in runs.values() if r.data.tags.get("dropout_lab.role") == "study"
                     and r.data.tags.get("dropout_lab.state") == "abandoned"]
    assert first_parent.info.status == "KILLED"
    assert "ended without ending this run" in first_parent.data.tags["dropout_lab.fail_reason"]
    dead = runs[trials[0].user_attrs["mlflow_run_id"]]
    assert dead.info.status == "FAILED"
    assert dead.data.tags["dropout_lab.fail_reason"].startswith("TrackingUnavailable")
