"""What a trial's run records through MLflow 3's own features, beyond params and metrics.

* System metrics (CPU, memory, disk, network; GPU with the ``gpu`` extra) from MLflow's
  system-metrics monitor, as ``system/...`` metrics of the trial's run.
* The dataset, as a run input (``mlflow.log_input`` for a run given by id): name, source and
  the SHA-256 the loaders check (:mod:`framework.data.provenance`).
* The trial's model at its best checkpoint, as an MLflow model (``mlflow.pytorch.log_model``)
  that ``mlflow.pytorch.load_model`` loads; a confirmed configuration's model is registered in
  the model registry under the study's name.
* The training state (``checkpoint/last.pt``) is deleted from the run once the trial finished,
  unless ``train.keep_last``: only the retry of a dead trial needs it.

Everything here is best effort for the trial: a failure is recorded as a run tag (or, for the
system metrics, dropped), never the reason a trained trial fails.
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import logging
import os
from typing import Any
import warnings

from framework.tracking.redact import redact
from framework.tracking.tracker import Tracker
from framework.tracking.tracker import TrackingUnavailable


MODEL_NAME = "model"
"""The MLflow model of every trial (``runs:/<run id>/model``)."""
MODEL_URI_ATTR = "mlflow_model_uri"
"""Optuna user attribute holding a trial's ``models:/<model id>``."""
SYSTEM_SAMPLING_S = 10.0
"""Seconds between two system samples (MLflow's default; MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL
overrides it)."""
_log = logging.getLogger(__name__)


class SystemMetrics:
    """MLflow's system-metrics monitor on one run, from :meth:`start` to :meth:`stop`."""

    def __init__(self, monitor: Any | None):
        self.monitor = monitor

    @classmethod
    def start(cls, tracker: Tracker, run_id: str, interval: float = SYSTEM_SAMPLING_S
              ) -> SystemMetrics:
        """Start sampling in a background thread (a monitor that cannot start records nothing)."""
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

        # Its own warnings (a store that does not answer, no GPU library) are not the trial's.
        logging.getLogger("mlflow.system_metrics").setLevel(logging.CRITICAL)
        try:
            monitor = SystemMetricsMonitor(run_id, sampling_interval=interval,
                                           tracking_uri=tracker.locations.tracking_uri)
            monitor.start()
        except Exception:
            return cls(None)
        return cls(monitor)

    def stop(self) -> None:
        """Stop sampling and log one last step: what was sampled since the last logged step, plus
        a sample now (so that a trial shorter than the interval has its figures too)."""
        monitor = self.monitor
        if monitor is None:
            return
        monitor.finish()
        with contextlib.suppress(Exception):
            monitor.collect_metrics()
            monitor.publish_metrics(monitor.aggregate_metrics())
            monitor.mlflow_logger.flush()


def log_dataset(tracker: Tracker, run_id: str, data: Any) -> None:
    """Record the dataset of a study's ``data`` section as an input of the run."""
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.entities import DatasetInput
    from mlflow.entities import InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    from framework.data.provenance import describe

    try:
        record = describe(data)
    except OSError:  # the loader reports a missing or unreadable file, better than we could
        return
    try:
        if record.files:
            with warnings.catch_warnings():  # "can be interpreted in multiple ways": a path
                warnings.simplefilter("ignore")
                source = resolve_dataset_source(record.source)
        else:  # a plugin's dataset, known by its config
            source = CodeDatasetSource({"dropout_lab.data": record.source})
        # MLflow's digest column holds 36 characters; the full SHA-256 goes in a tag.
        dataset = MetaDataset(source, name=record.name, digest=record.sha256[:16])
        tags = [InputTag(MLFLOW_DATASET_CONTEXT, "training"),
                InputTag("dropout_lab.sha256", record.sha256)]
        tags += [InputTag(f"dropout_lab.sha256.{name}", digest)
                 for name, digest in record.files.items() if len(record.files) > 1]
        tracker.log_inputs(run_id, [DatasetInput(dataset._to_mlflow_entity(), tags=tags)])
    except Exception as exc:
        if isinstance(exc, TrackingUnavailable):  # the trial's own outage handling decides
            raise
        tracker.set_tags(run_id, {"dropout_lab.dataset_error":
                                  redact(f"{type(exc).__name__}: {exc}")[:5000]})


def log_model(tracker: Tracker, trial: Any, run_id: str, experiment_id: str, model: Any,
              step: int) -> str | None:
    """Log ``model`` as the run's MLflow model; returns its ``models:/`` URI (None if it failed).

    The URI is kept on the trial (user attribute ``mlflow_model_uri``). The model is pickled
    (cloudpickle; loading needs this package importable) with its requirements given, so that
    logging takes well under a second: MLflow infers nothing.
    """
    import mlflow.pytorch
    import torch

    from framework import __version__

    model = model.to("cpu").eval()  # loadable on any machine, and as it is used: dropout off
    try:
        # Created here, in the study's experiment (MLflow's fluent API would pick the Default
        # experiment for a run that is not its active run).
        logged = tracker.client.create_logged_model(experiment_id, name=MODEL_NAME,
                                                    source_run_id=run_id)
        with _fluent_tracking(tracker.locations.tracking_uri), _quiet("mlflow.pytorch"):
            info = mlflow.pytorch.log_model(
                model, name=MODEL_NAME, model_id=logged.model_id, run_id=run_id, step=step,
                serialization_format="pickle", pip_requirements=[f"torch=={torch.__version__}"],
                metadata={"dropout_lab_version": __version__})
    except Exception as exc:
        reason = redact(f"{type(exc).__name__}: {exc}")[:5000]
        tracker.set_tags(run_id, {"dropout_lab.model_error": reason})
        _log.warning("trial %s: the model was not logged to MLflow: %s", trial.number, reason)
        return None
    trial.set_user_attr(MODEL_URI_ATTR, info.model_uri)
    return info.model_uri


def register_model(tracker: Tracker, name: str, model_uri: str, tags: dict[str, str],
                   description: str) -> Any:
    """A new version of registered model ``name`` (created on first use) from a logged model's
    ``models:/<model id>`` (``mlflow.register_model``, which keeps the run it came from)."""
    import mlflow

    with _fluent_tracking(tracker.locations.tracking_uri), _quiet("mlflow"):
        version = mlflow.register_model(model_uri, name, tags=tags)
    return tracker.client.update_model_version(name, version.version, description=description)


def drop_checkpoint(tracker: Tracker, run_id: str) -> None:
    """Delete the run's ``checkpoint/`` artifacts (the training state of a finished trial)."""
    delete_artifacts(tracker, run_id, "checkpoint")


def delete_artifacts(tracker: Tracker, run_id: str, path: str | None = None) -> None:
    """Delete the run's artifacts under ``path`` (all of them when None), after every upload
    still pending; they stay in place when the store does not answer."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    with contextlib.suppress(Exception):
        tracker.flush(wait=0)
        artifact_uri = tracker.client.get_run(run_id).info.artifact_uri
        repository = get_artifact_repository(artifact_uri,
                                             tracking_uri=tracker.locations.tracking_uri)
        repository.delete_artifacts(path)


@contextlib.contextmanager
def _fluent_tracking(uri: str) -> Iterator[None]:
    """MLflow's fluent API pointed at ``uri`` for a while (``log_model`` has no client form).

    MLflow's own switch clears ``MLFLOW_TRACKING_URI`` on the way back when the URI came from
    there, so the variable is restored too.
    """
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    before = os.environ.get("MLFLOW_TRACKING_URI")
    try:
        with _use_tracking_uri(uri):
            yield
    finally:
        if before is not None:
            os.environ["MLFLOW_TRACKING_URI"] = before


@contextlib.contextmanager
def _quiet(logger: str) -> Iterator[None]:
    """Silence ``logger`` below errors for a while (MLflow warns on every pickled model)."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)
