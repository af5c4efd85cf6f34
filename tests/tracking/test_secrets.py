"""Passwords in ``--storage`` and ``--tracking-uri`` are used, never shown or stored."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
import subprocess
import sys
import time
import uuid

from mlflow import MlflowClient
import optuna
import pytest

from framework.tracking.redact import redact
from tests.conftest import TINY_STUDY
from tests.conftest import write_study
from tests.tracking.conftest import TrackingServer
from tests.tracking.test_outage import free_port
from tests.tuning.test_workers import POSTGRES
from tests.tuning.test_workers import reachable


SECRET = "S3cr"
"""In both passwords below, and in the decoded form of the storage's (``S3cr/t``)."""

# Runs each command as `dropout-lab ARGS...` would, one after the other in one process (a
# process per command would spend ~5 s each importing torch, MLflow and Optuna). The environment
# is restored before each, so a command does not profit from settings an earlier one made.
DRIVER = """
import json, os, sys
from framework.cli.app import main
environment = dict(os.environ)
for argv in json.loads(sys.argv[1]):
    os.environ.clear()
    os.environ.update(environment)
    sys.argv = ["dropout-lab", *argv]
    try:
        main()
        code = 0
    except SystemExit as stop:
        code = stop.code or 0
    sys.stderr.flush()
    print(f"=== {argv[0]} exited {code}", flush=True)
"""


@pytest.mark.parametrize(("text", "expected"), [
    ("postgresql://me:secret@host/db", "postgresql://me:***@host/db"),
    ("mysql+pymysql://u:pa/ss@h:3306/db", "mysql+pymysql://u:***@h:3306/db"),
    ("see x://u:p@ss@h/db now", "see x://u:***@h/db now"),
    ("['http://me@mail.org:pw@h/x', 'http://u:q@h2']",
     "['http://me@mail.org:***@h/x', 'http://u:***@h2']"),
    ("postgresql://h/db?user=me&password=s3&sslmode=require",
     "postgresql://h/db?user=me&password=***&sslmode=require"),
    ("host=h password=s3 port=5432", "host=h password=*** port=5432"),
    ("postgresql://postgres@h/db", "postgresql://postgres@h/db"),
    ("http://127.0.0.1:5000/#/experiments/1", "http://127.0.0.1:5000/#/experiments/1"),
    ("file:///srv/a:b@c/x", "file:///srv/a:b@c/x"),
    ("tokens_per_sec=3", "tokens_per_sec=3"),
])
def test_redact_hides_every_form_of_password(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize("text", [
    "a" * 400_000, "a://" * 100_000, "x:" * 200_000, "@" * 400_000, "a://u:" + "@" * 400_000,
    "://a:b" * 70_000, "password=" * 50_000,
])
def test_redact_takes_linear_time(text: str) -> None:
    started = time.perf_counter()
    redact(text)
    assert time.perf_counter() - started < 1.0  # the quadratic version took 10 s for 80k


@pytest.mark.slow
@pytest.mark.db
def test_no_command_shows_or_stores_a_password(tmp_path: Path,
                                                tracking_server: TrackingServer) -> None:
    reason = reachable(POSTGRES)
    if reason:
        pytest.skip(reason)
    storage = POSTGRES.replace("postgres@", "postgres:S3cr%2Ft@")  # trust auth ignores it
    tracking = f"http://user:S3cret@127.0.0.1:{tracking_server.port}"
    name = f"secrets-{uuid.uuid4().hex[:8]}"
    study = str(write_study(tmp_path, TINY_STUDY.format(name=name)
                            + "confirm: {baseline: {dropout: [{name: standard, p: 0.0}]}}\n"))
    absent = str(write_study(tmp_path, TINY_STUDY.format(name=f"{name}-absent"), "absent.yaml"))
    labelled = tmp_path / "labelled.tsv"
    labelled.write_text("sentence\tlabel\nfine\t1\n")
    stores = ["--storage", storage, "--tracking-uri", tracking, "--home", str(tmp_path / "mlruns")]
    commands = [
        ["run", study, *stores],
        ["worker", study, "search.n_trials=3", *stores],
        ["compare", study, *stores],
        ["confirm", study, "--top", "1", "--seeds", "2", *stores],
        ["report", study, *stores],
        ["depth", study, *stores],  # no layerdrop trials: an error, with the stores opened
        ["evaluate", str(labelled), "--study", study, "--trial", "0", *stores],  # wrong dataset
        ["evaluate", str(labelled), "--study", absent, "--trial", "0", *stores],  # no such study
        ["run", study, "--storage", storage,
         "--tracking-uri", f"http://user:S3cret@127.0.0.1:{free_port()}"],  # nothing listens
    ]
    env = {**os.environ, "HOME": str(tmp_path / "home"), "COLUMNS": "200"}
    env.pop("MLFLOW_TRACKING_URI", None)
    try:
        result = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(commands)],
                                cwd=tmp_path, env=env, capture_output=True, text=True,
                                timeout=600)
        shown = result.stdout + result.stderr
        exits = [line.split()[1:] for line in result.stdout.splitlines()
                 if line.startswith("=== ")]
        assert exits == [["run", "exited", "0"], ["worker", "exited", "0"],
                         ["compare", "exited", "0"], ["confirm", "exited", "0"],
                         ["report", "exited", "0"], ["depth", "exited", "1"],
                         ["evaluate", "exited", "2"], ["evaluate", "exited", "2"],
                         ["run", "exited", "2"]], shown
        assert SECRET not in shown
        assert "Traceback" not in result.stderr
        assert "user:***@" in shown and "postgres:***@" in shown  # the URLs, as shown

        for study_name in (name, f"{name}-confirm"):
            loaded = optuna.load_study(study_name=study_name, storage=POSTGRES)
            assert SECRET not in repr(loaded.user_attrs)
            for trial in loaded.trials:
                assert SECRET not in repr([trial.user_attrs, trial.system_attrs, trial.params])
        client = MlflowClient(f"http://127.0.0.1:{tracking_server.port}")
        runs = client.search_runs([client.get_experiment_by_name(name).experiment_id])
        assert len(runs) >= 10, "run, worker, compare, confirm and report logged their runs"
        # Everything the server was sent (params, tags, metrics, artifacts), and every file the
        # commands wrote under the working folder, --home and HOME.
        for folder in (tracking_server.folder, tmp_path):
            for path in folder.rglob("*"):
                if path.is_file():
                    assert SECRET.encode() not in path.read_bytes(), path
    finally:
        for study_name in (name, f"{name}-confirm"):
            with contextlib.suppress(KeyError):
                optuna.delete_study(study_name=study_name, storage=POSTGRES)
