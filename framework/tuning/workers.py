"""Local worker processes sharing one study (``dropout-lab run FILE --workers N``).

Each worker is a separate ``dropout-lab worker`` process (not a thread) with its share of the
free cores, talking to the same Optuna storage and MLflow store; the same command joins the study
from other machines. A study with arms, and a confirmation, are shared instead by copies of the
command itself (``run_copies``), as if it had been started N times. Storage and tracking URLs
travel in the environment, not on the command line, so passwords in them do not show in process
listings.
"""

from __future__ import annotations

from collections.abc import Sequence
import os
from pathlib import Path
import re
import signal
import subprocess
import sys

from framework.config import LoadedSpec
from framework.tracking import Locations


STORAGE_ENV = "DROPOUT_LAB_STORAGE"
TRACKING_ENV = "DROPOUT_LAB_TRACKING_URI"
COPY_ENV = "DROPOUT_LAB_COPY"
"""Set in the processes that ``run_copies`` starts: each prints one line per trial (live displays
of several processes would overwrite one another) and leaves the tables to its starter."""
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
    return _wait_for_all([
        ([*command, "--worker-index", str(index)],
         env if gpu is None else {**env, CUDA_VISIBLE: gpu})
        for index, gpu in enumerate(worker_gpus(workers, gpus))
    ])


def is_copy() -> bool:
    """Whether this process is one of the copies that ``run_copies`` started."""
    return bool(os.environ.get(COPY_ENV))


def inherited_locations(home: str | Path, storage: str | None,
                        tracking_uri: str | None) -> Locations:
    """The stores of a ``run`` or ``confirm``: in a copy, the URLs its starter was given (passed
    in the environment) unless the command line names others.

    Raises:
        SpecError: as ``Locations.resolve``.
    """
    if is_copy():
        storage = storage or os.environ.get(STORAGE_ENV)
        tracking_uri = tracking_uri or os.environ.get(TRACKING_ENV)
    return Locations.resolve(home, storage, tracking_uri)


def copy_command(command: str, loaded: LoadedSpec, home: Path, threads: int | None,
                 plugin_paths: Sequence[str] = (), options: Sequence[str] = ()) -> list[str]:
    """``dropout-lab COMMAND FILE OVERRIDES`` for one copy, with its thread count as the override
    ``train.threads`` (which no study's settings compare) unless the spec sets it."""
    argv = [sys.executable, "-m", "framework.cli", command, loaded.source, *loaded.overrides]
    if threads is not None:
        argv.append(f"train.threads={threads}")
    argv += ["--home", str(home)]
    for path in plugin_paths:
        argv += ["--plugins", path]
    return argv + list(options)


def run_copies(command: str, loaded: LoadedSpec, home: Path, copies: int,
               storage: str | None = None, tracking_uri: str | None = None,
               plugin_paths: Sequence[str] = (), gpus: list[str] | None = None,
               options: Sequence[str] = ()) -> list[int]:
    """Run ``copies`` processes of ``dropout-lab COMMAND`` on the same study and wait for them.

    Separate invocations of ``run`` (arms) and ``confirm`` already share their queue of trials;
    this starts them for the user, each with its share of the free cores and, on a machine with
    GPUs, its own device (as :func:`run_workers`). ``storage`` and ``tracking_uri`` are the
    URLs given on the command line, if any: the copies resolve the rest from ``home`` as their
    starter did.

    Returns the exit codes of the copies that failed.
    """
    from framework.training.device import default_threads

    threads = None if loaded.spec.train.threads else default_threads(copies)
    env = {**os.environ, COPY_ENV: "1"}
    if storage:
        env[STORAGE_ENV] = storage
    if tracking_uri:
        env[TRACKING_ENV] = tracking_uri
    argv = copy_command(command, loaded, home, threads, plugin_paths, options)
    return _wait_for_all([(argv, env if gpu is None else {**env, CUDA_VISIBLE: gpu})
                          for gpu in worker_gpus(copies, gpus)])


def _wait_for_all(commands: list[tuple[list[str], dict[str, str]]]) -> list[int]:
    """Start every ``(argv, environment)`` and wait for all; Ctrl-C stops them cleanly.
    Returns the exit codes that were not 0."""
    processes = [subprocess.Popen(argv, env=env) for argv, env in commands]
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
