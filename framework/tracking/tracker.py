"""A thin, batched MLflow client for studies and trials, patient with an unreachable server.

When a tracking server cannot be reached, logging calls are kept in order and sent once it
answers again, so training goes on; if it stays unreachable longer than ``timeout`` seconds the
next call raises :class:`TrackingUnavailable`, which fails the trial with that reason.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
import os
import re
import subprocess
import time
from typing import Any

from framework.tracking.redact import redact
from framework.tracking.store import Locations


_BAD_KEY_CHARS = re.compile(r"[^\w./\- :]")
_PARAMS_PER_BATCH = 100  # MLflow's limit per log_batch call
_MAX_PARAM_LENGTH = 6000
# Errors that mean "the request was wrong", not "the server is away": never retried.
_PERMANENT = {"INVALID_PARAMETER_VALUE", "RESOURCE_ALREADY_EXISTS", "RESOURCE_DOES_NOT_EXIST",
              "BAD_REQUEST", "PERMISSION_DENIED", "UNAUTHENTICATED"}


class TrackingUnavailable(RuntimeError):
    """The MLflow tracking store stayed unreachable for longer than the allowed time."""


class Tracker:
    """Creates and fills the runs of a study through one ``MlflowClient``."""

    def __init__(self, locations: Locations, timeout: float = 600.0):
        if locations.tracking_uri.startswith("http"):
            # Fail fast inside MLflow's client; this class does the waiting and the retrying.
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
        from mlflow import MlflowClient

        self.locations = locations
        self.client = MlflowClient(tracking_uri=locations.tracking_uri)
        self.timeout = timeout
        self._pending: list[Callable[[], Any]] = []
        self._down_since: float | None = None

    def _send(self, call: Callable[[], Any]) -> None:
        """Send ``call`` after anything still pending; keep it if the store is unreachable."""
        self._pending.append(call)
        self._drain()

    def _drain(self) -> None:
        while self._pending:
            try:
                self._pending[0]()
            except Exception as exc:
                if getattr(exc, "error_code", None) in _PERMANENT:
                    self._pending.pop(0)
                    raise
                now = time.monotonic()
                self._down_since = self._down_since or now
                if now - self._down_since > self.timeout:
                    raise TrackingUnavailable(
                        f"MLflow tracking store {redact(self.locations.tracking_uri)} unreachable "
                        f"for {now - self._down_since:.0f} s: {redact(str(exc))[:300]}"
                    ) from None
                return
            self._pending.pop(0)
        self._down_since = None

    def flush(self, wait: float | None = None) -> None:
        """Try to send what is pending, for up to ``wait`` seconds (default: the timeout)."""
        deadline = time.monotonic() + (self.timeout if wait is None else wait)
        delay = 0.5
        self._drain()
        while self._pending:
            if time.monotonic() > deadline:
                raise TrackingUnavailable(
                    f"MLflow tracking store {redact(self.locations.tracking_uri)} unreachable; "
                    f"{len(self._pending)} logging calls could not be sent")
            time.sleep(delay)
            delay = min(delay * 2, 10.0)
            self._drain()

    def experiment_id(self, study_name: str) -> str:
        """The experiment named after the study, created on first use."""
        experiment = self.client.get_experiment_by_name(study_name)
        if experiment is not None:
            return experiment.experiment_id
        root = self.locations.artifact_root
        return self.client.create_experiment(
            study_name, artifact_location=f"{root}/{study_name}" if root else None
        )

    def start_run(self, experiment_id: str, run_name: str, tags: dict[str, str],
                  parent_run_id: str | None = None) -> str:
        from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

        tags = {**base_tags(), **tags}
        if parent_run_id is not None:
            tags[MLFLOW_PARENT_RUN_ID] = parent_run_id
        return self.client.create_run(experiment_id, run_name=run_name, tags=tags).info.run_id

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(_key(k), redact(str(v))[:_MAX_PARAM_LENGTH]) for k, v in params.items()]
        for start in range(0, len(items), _PARAMS_PER_BATCH):
            chunk = items[start:start + _PARAMS_PER_BATCH]
            self._send(lambda chunk=chunk: self.client.log_batch(run_id, params=chunk))

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int) -> None:
        """All of one step's metrics in a single call."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(_key(k), float(v), now, step) for k, v in metrics.items()]
        self._send(lambda: self.client.log_batch(run_id, metrics=batch))

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag

        run_tags = [RunTag(k, redact(str(v))) for k, v in tags.items()]
        self._send(lambda: self.client.log_batch(run_id, tags=run_tags))

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        text = redact(text)
        self._send(lambda: self.client.log_text(run_id, text, artifact_file))

    def log_artifacts(self, run_id: str, local_dir: str, artifact_path: str | None = None) -> None:
        """Upload now (the files may be temporary), waiting out an unreachable store."""
        self.flush()
        self._send(lambda: self.client.log_artifacts(run_id, local_dir, artifact_path))
        self.flush()

    def log_artifact_later(self, run_id: str, local_path: str,
                           artifact_path: str | None = None) -> None:
        """Upload ``local_path`` now, or when the store is back (whatever the file holds then)."""
        self._send(lambda: self.client.log_artifact(run_id, local_path, artifact_path))

    def end_run(self, run_id: str, status: str) -> None:
        """``status``: FINISHED, FAILED or KILLED; sends everything still pending first."""
        self._send(lambda: self.client.set_terminated(run_id, status))
        self.flush()


def _key(name: str) -> str:
    return _BAD_KEY_CHARS.sub("_", name)


def base_tags() -> dict[str, str]:
    from framework import __version__

    tags = {"dropout_lab.version": __version__}
    commit = git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
    return tags


@cache
def git_commit() -> str | None:
    """The commit of the working directory's repository, if there is one."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None
