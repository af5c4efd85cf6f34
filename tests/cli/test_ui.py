"""`dropout-lab ui` serves the study store's runs on 127.0.0.1."""

from __future__ import annotations

import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from framework.tracking import Locations
from framework.tracking import Tracker
from tests.tracking.test_outage import free_port


@pytest.mark.slow
def test_ui_serves_the_runs_of_the_default_store(tmp_path: Path) -> None:
    home = tmp_path / "mlruns"
    locations = Locations.resolve(home)
    locations.prepare()
    Tracker(locations).experiment_id("shown-in-ui")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "framework.cli", "ui", "--home", str(home), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True,
    )
    try:
        assert process.stdout.readline().startswith(f"MLflow UI at http://127.0.0.1:{port}")
        url = f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/get-by-name?" \
              "experiment_name=shown-in-ui"
        deadline = time.monotonic() + 300
        while True:
            try:
                with urllib.request.urlopen(url, timeout=30) as response:
                    body = json.load(response)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        assert body["experiment"]["name"] == "shown-in-ui"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
