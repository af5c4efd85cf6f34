"""Local worker processes sharing one study (``dropout-lab run FILE --workers N``).

Each worker is a separate ``dropout-lab worker`` process (not a thread) with its share of the
cores, talking to the same Optuna storage and MLflow store; the same command joins the study from
other machines. Storage and tracking URLs travel in the environment, not on the command line, so
passwords in them do not show in process listings.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from framework.config import LoadedSpec
from framework.tracking import Locations


STORAGE_ENV = "DROPOUT_LAB_STORAGE"
TRACKING_ENV = "DROPOUT_LAB_TRACKING_URI"


def worker_command(loaded: LoadedSpec, parent_run_id: str, threads: int,
                   plugin_paths: tuple[str, ...]) -> list[str]:
    command = [sys.executable, "-m", "framework.cli", "worker", loaded.source,
               *loaded.overrides, "--parent-run-id", parent_run_id, "--threads", str(threads)]
    for path in plugin_paths:
        command += ["--plugins", path]
    return command


def run_workers(loaded: LoadedSpec, locations: Locations, parent_run_id: str, workers: int,
                plugin_paths: tuple[str, ...] = ()) -> list[int]:
    """Start ``workers`` processes and wait for all of them; Ctrl-C stops them cleanly.

    Returns the exit codes of the workers that failed: a killed worker is survivable (its trial
    is retried by another), so the caller decides from the study whether the run succeeded.
    """
    threads = max(1, (os.cpu_count() or 1) // workers)
    env = {**os.environ, STORAGE_ENV: locations.storage, TRACKING_ENV: locations.tracking_uri}
    command = worker_command(loaded, parent_run_id, threads, plugin_paths)
    processes = [subprocess.Popen([*command, "--seed-offset", str(index)], env=env)
                 for index in range(workers)]
    try:
        codes = [process.wait() for process in processes]
    except KeyboardInterrupt:
        for process in processes:  # each marks its running trial failed and ends its run
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in processes:
            process.wait()
        raise
    return [code for code in codes if code != 0]
