"""Local worker processes sharing one study (``dropout-lab run FILE --workers N``).

Each worker is a separate ``dropout-lab worker`` process (not a thread) with its share of the
free cores, talking to the same Optuna storage and MLflow store; the same command joins the study
from other machines. Storage and tracking URLs travel in the environment, not on the command
line, so passwords in them do not show in process listings.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

from framework.config import LoadedSpec
from framework.tracking import Locations


STORAGE_ENV = "DROPOUT_LAB_STORAGE"
TRACKING_ENV = "DROPOUT_LAB_TRACKING_URI"
CUDA_VISIBLE = "CUDA_VISIBLE_DEVICES"
GPU_NAME = re.compile(r"\d+|(GPU|MIG)-[0-9A-Za-z\-/]+")
"""An entry of ``CUDA_VISIBLE_DEVICES``: an index, or a device's UUID or MIG name."""


def worker_command(loaded: LoadedSpec, parent_run_id: str, threads: int,
                   plugin_paths: tuple[str, ...]) -> list[str]:
    command = [sys.executable, "-m", "framework.cli", "worker", loaded.source,
               *loaded.overrides, "--parent-run-id", parent_run_id, "--threads", str(threads)]
    for path in plugin_paths:
        command += ["--plugins", path]
    return command


def parse_gpus(text: str) -> list[str]:
    """The devices of a ``--gpus`` value (``0,1,3``; CUDA's UUID or MIG names work too).

    Raises:
        SpecError: naming ``--gpus``, when the list is empty or an entry is not a device name.
    """
    from framework.errors import SpecError

    gpus = [entry.strip() for entry in text.split(",")]
    bad = [entry for entry in gpus if not GPU_NAME.fullmatch(entry)]
    if not text.strip() or bad:
        raise SpecError(f"{text!r} is not a comma-separated list of GPUs (e.g. 0,1,3; "
                        f"not a device: {', '.join(map(repr, bad))})", key="--gpus")
    return gpus


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as ``CUDA_VISIBLE_DEVICES`` names them: that variable's
    entries when it is set, else one per device torch sees (none without CUDA)."""
    listed = os.environ.get(CUDA_VISIBLE)
    if listed is not None:
        names = [entry.strip() for entry in listed.split(",")]
        # CUDA stops at the first entry that names no device ("" or "-1" hide every GPU).
        cut = next((i for i, name in enumerate(names) if not name or name.startswith("-")),
                   len(names))
        return names[:cut]
    import torch

    return [str(index) for index in range(torch.cuda.device_count())]


def worker_gpus(workers: int, gpus: list[str] | None = None) -> list[str | None]:
    """The ``CUDA_VISIBLE_DEVICES`` of each local worker: ``gpus`` (default: the visible ones)
    dealt round-robin, so N workers on N GPUs get one each; None for all without GPUs."""
    devices = visible_gpus() if gpus is None else gpus
    if not devices:
        return [None] * workers
    return [devices[index % len(devices)] for index in range(workers)]


def run_workers(loaded: LoadedSpec, locations: Locations, parent_run_id: str, workers: int,
                plugin_paths: tuple[str, ...] = (), gpus: list[str] | None = None) -> list[int]:
    """Start ``workers`` processes and wait for all of them; Ctrl-C stops them cleanly.

    On a machine with GPUs each worker sees only its own (``CUDA_VISIBLE_DEVICES``, see
    :func:`worker_gpus`; ``gpus`` chooses them); its torch threads are set as without GPUs.

    Returns the exit codes of the workers that failed: a killed worker is survivable (its trial
    is retried by another), so the caller decides from the study whether the run succeeded.
    """
    from framework.training.device import default_threads

    threads = loaded.spec.train.threads or default_threads(workers)
    env = {**os.environ, STORAGE_ENV: locations.storage, TRACKING_ENV: locations.tracking_uri}
    command = worker_command(loaded, parent_run_id, threads, plugin_paths)
    # The index is each worker's own part of its sampler seed (see ``sampler_seed``).
    processes = [
        subprocess.Popen([*command, "--worker-index", str(index)],
                         env=env if gpu is None else {**env, CUDA_VISIBLE: gpu})
        for index, gpu in enumerate(worker_gpus(workers, gpus))
    ]
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
