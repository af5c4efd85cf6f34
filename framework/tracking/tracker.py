"""A thin, batched MLflow client for studies and trials, patient with an unreachable server.

When a tracking server cannot be reached, logging calls are kept in order and sent once it
answers again, so training goes on; if it stays unreachable longer than ``timeout`` seconds the
next call raises :class:`TrackingUnavailable`, which fails the trial with that reason.

The tracker remembers the runs it started until they are ended, so that a command that gives up
on the store can say which runs it leaves open (the next invocation of the study closes them,
see ``framework/tuning/abandoned.py``). MLflow's own output is turned off: its "View run" links
would print the tracking URI with its password, and its download progress bar would draw over
the run's display.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from functools import cached_property
import logging
import os
import re
import subprocess
import time
from typing import Any

from framework.tracking.interrupt import deferred_interrupt
from framework.tracking.redact import redact
from framework.tracking.store import Locations
from framework.tracking.store import is_database_url


_BAD_KEY_CHARS = re.compile(r"[^\w./\- :]")
_PARAMS_PER_BATCH = 100  # MLflow's limit per log_batch call
_MAX_PARAM_LENGTH = 6000
# Errors that mean "the request was wrong", not "the server is away": never retried.
_PERMANENT = {"INVALID_PARAMETER_VALUE", "RESOURCE_ALREADY_EXISTS", "RESOURCE_DOES_NOT_EXIST",
              "BAD_REQUEST", "PERMISSION_DENIED", "UNAUTHENTICATED"}


class TrackingUnavailable(RuntimeError):
    """The MLflow tracking store did not answer: at the start, or for longer than allowed."""


class Tracker:
    """Creates and fills the runs of a study through one ``MlflowClient``."""

    def __init__(self, locations: Locations, timeout: float = 600.0):
        if locations.tracking_uri.startswith("http"):
            # Fail fast inside MLflow's client; this class does the waiting and the retrying.
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
        silence_mlflow_output()
        quiet_redundant_driver_warnings()
        self.locations = locations
        self.timeout = timeout
        self.open_runs: dict[str, str] = {}
        """Runs started here and not ended yet: run id -> run name."""
        self.failure: TrackingUnavailable | None = None
        """The last time the store was given up on, if it was."""
        self._pending: list[Callable[[], Any]] = []
        self._down_since: float | None = None

    @cached_property
    def client(self) -> Any:
        """The ``MlflowClient``, made on first use: for a database store it creates the tables,
        which ``Locations.prepare`` does first, under its lock."""
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.locations.tracking_uri)

    def check_reachable(self) -> None:
        """Raise :class:`TrackingUnavailable` now if a tracking server does not answer.

        Called before anything of a run is created, so that an unreachable server ends the
        command with nothing left behind. Database stores are opened by ``Locations.prepare``.
        """
        if not is_database_url(self.locations.tracking_uri):
            self._call_now(lambda: self.client.search_experiments(max_results=1), wait=0)

    def _call_now(self, call: Callable[[], Any], wait: float) -> Any:
        """Return what ``call`` returns, retrying an unreachable store for up to ``wait`` s.

        For calls whose result is needed at once (creating a run): they cannot be queued.
        """
        deadline = time.monotonic() + wait
        delay = 0.5
        while True:
            try:
                with deferred_interrupt():
                    result = call()
            except Exception as exc:
                if getattr(exc, "error_code", None) in _PERMANENT:
                    raise
                now = time.monotonic()
                self._down_since = self._down_since or now
                if now >= deadline:
                    raise self._give_up(f"unreachable: {_brief(exc)}") from None
            else:
                if not self._pending:
                    self._down_since = None
                return result
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 10.0)

    def _give_up(self, why: str) -> TrackingUnavailable:
        self.failure = TrackingUnavailable(
            f"MLflow tracking store {redact(self.locations.tracking_uri)} {why}")
        return self.failure

    def left_open(self) -> str:
        """The runs started here that could not be ended, for a message; "" when none."""
        if not self.open_runs:
            return ""
        runs = ", ".join(f"{name} ({run_id})" for run_id, name in self.open_runs.items())
        return (f"MLflow runs left RUNNING: {runs}; the next `dropout-lab run` of the study "
                "closes them once the store answers")

    def unavailable(self) -> TrackingUnavailable:
        """The last failure, naming the runs it leaves open: the message a command ends with."""
        return TrackingUnavailable("; ".join(filter(None, [str(self.failure), self.left_open()])))

    def _send(self, call: Callable[[], Any]) -> None:
        """Send ``call`` after anything still pending; keep it if the store is unreachable."""
        self._pending.append(call)
        self._drain()

    def _drain(self) -> None:
        while self._pending:
            try:
                with deferred_interrupt():
                    self._pending[0]()
            except Exception as exc:
                if getattr(exc, "error_code", None) in _PERMANENT:
                    self._pending.pop(0)
                    raise
                now = time.monotonic()
                self._down_since = self._down_since or now
                if now - self._down_since > self.timeout:
                    raise self._give_up(f"unreachable for {now - self._down_since:.0f} s: "
                                        f"{_brief(exc)}") from None
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
                raise self._give_up(
                    f"unreachable; {len(self._pending)} logging calls could not be sent")
            time.sleep(delay)
            delay = min(delay * 2, 10.0)
            self._drain()

    def experiment_id(self, study_name: str) -> str:
        """The experiment named after the study, created on first use.

        Raises:
            TrackingUnavailable: at once, when the store does not answer.
        """
        return self._call_now(lambda: self._experiment_id(study_name), wait=0)

    def _experiment_id(self, study_name: str) -> str:
        """A new experiment keeps its artifacts under ``<artifact root>/<study name>``; an
        existing one keeps the location it was created with (MLflow cannot move it), so a later
        ``--home`` or ``--artifacts`` applies to new studies only."""
        experiment = self.client.get_experiment_by_name(study_name)
        if experiment is not None:
            return experiment.experiment_id
        root = self.locations.artifact_root
        try:
            return self.client.create_experiment(
                study_name, artifact_location=f"{root}/{study_name}" if root else None
            )
        except Exception:
            # Another invocation of the same study created it since the look-up: use theirs.
            experiment = self.client.get_experiment_by_name(study_name)
            if experiment is None:
                raise
            return experiment.experiment_id

    def start_run(self, experiment_id: str, run_name: str, tags: dict[str, str],
                  parent_run_id: str | None = None) -> str:
        """A new run; waits out an unreachable store as logging does (up to the timeout).

        Raises:
            TrackingUnavailable: when the store stays unreachable that long.
        """
        from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

        tags = {**base_tags(), **{k: redact(str(v)) for k, v in tags.items()}}
        if parent_run_id is not None:
            tags[MLFLOW_PARENT_RUN_ID] = parent_run_id
        since = self._down_since or time.monotonic()
        run = self._call_now(
            lambda: self.client.create_run(experiment_id, run_name=run_name, tags=tags),
            wait=self.timeout - (time.monotonic() - since))
        self.open_runs[run.info.run_id] = run_name
        return run.info.run_id

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(_key(k), redact(str(v))[:_MAX_PARAM_LENGTH]) for k, v in params.items()]
        for start in range(0, len(items), _PARAMS_PER_BATCH):
            chunk = items[start:start + _PARAMS_PER_BATCH]
            self._send(lambda chunk=chunk: self.client.log_batch(run_id, params=chunk))

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int) -> None:
        """All of one step's metrics in a single call.

        The timestamp is taken now, not when the call is sent: a call resent after a failure
        whose insert may have committed then carries the very rows stored, which MLflow skips
        (a metric row is identified by run, key, step, timestamp and value), rather than a
        second copy of each point.
        """
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

    def log_inputs(self, run_id: str, datasets: list[Any]) -> None:
        """Record ``mlflow.entities.DatasetInput`` s as the run's inputs (``mlflow.log_input``
        for a run given by id)."""
        self._send(lambda: self.client.log_inputs(run_id, datasets=datasets))

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
        def terminate() -> None:
            self.client.set_terminated(run_id, status)
            self.open_runs.pop(run_id, None)

        self._send(terminate)
        self.flush()

    def search_runs(self, experiment_id: str, filter_string: str) -> list[Any]:
        """Runs of the experiment matching an MLflow filter (all pages).

        Raises:
            TrackingUnavailable: at once, when the store does not answer.
        """
        return self._call_now(
            lambda: self.client.search_runs([experiment_id], filter_string),
            wait=0)


def silence_mlflow_output() -> None:
    """Stop MLflow printing to the terminal on its own (idempotent; this process only).

    Its "View run ... at: URL" lines would show the tracking URI's password, and its artifact
    download progress bar would draw over the run's display.
    """
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"


def quiet_redundant_driver_warnings() -> None:
    """Drop psycopg's "error ignored terminating <psycopg.Pipeline>: pipeline aborted" warning
    (idempotent; this process only).

    psycopg logs it only while another error is already leaving a pipeline (its second error,
    from closing the aborted pipeline, is thrown away): the first error is raised and handled
    as usual. On PostgreSQL that first error is often a duplicate metric row, which MLflow's
    store expects and skips: ``log_model(step=...)`` logs the run's metrics of that step again,
    linked to the model, and a resent call (see ``Tracker.log_metrics``) repeats its rows.
    """
    driver_log = logging.getLogger("psycopg")
    if not any(isinstance(f, _RedundantPipelineWarning) for f in driver_log.filters):
        driver_log.addFilter(_RedundantPipelineWarning())


class _RedundantPipelineWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno == logging.WARNING
                    and str(record.msg).startswith("error ignored terminating"))


def _brief(error: Exception, limit: int = 300) -> str:
    """The error's message, redacted and shortened; the end is kept, as it says the cause
    ("Connection refused")."""
    text = redact(str(error))
    return text if len(text) <= limit else f"{text[:limit // 3]} ... {text[-2 * limit // 3:]}"


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
