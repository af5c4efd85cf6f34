"""``dropout-lab dashboard``: optuna-dashboard on the study's storage, an optional extra."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.conftest import TinyRuns
from tests.conftest import invoke
from tests.tracking.test_outage import free_port


def test_without_the_extra_the_command_names_it_and_exits_2(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "optuna_dashboard", None)  # import fails as if absent
    home = tmp_path / "mlruns"
    result = invoke("dashboard", "--home", str(home))
    assert result.exit_code == 2, result.output
    assert "optional extra `dashboard`" in result.stderr
    assert "pip install -e '.[dashboard]'" in result.stderr
    assert "Traceback" not in result.output and not home.exists()


@pytest.mark.skipif(importlib.util.find_spec("optuna_dashboard") is None,
                    reason="optuna-dashboard is not installed (pip install -e '.[dashboard]')")
def test_the_dashboard_serves_the_study_with_its_objective_named(tiny_runs: TinyRuns) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "framework.cli", "dashboard", "searched", "--home",
         str(tiny_runs.home), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "COLUMNS": "200"})
    try:
        first = process.stdout.readline()
        assert first.startswith(f"optuna-dashboard at http://127.0.0.1:{port}/dashboard/studies/")
        study_id = first.split("/studies/")[1].split()[0]
        deadline = time.monotonic() + 120
        while True:
            try:
                url = f"http://127.0.0.1:{port}/api/studies/{study_id}"
                with urllib.request.urlopen(url, timeout=10) as response:
                    detail = json.load(response)
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.3)
        assert detail["name"] == "searched" and detail["objective_names"] == ["val_loss"]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
