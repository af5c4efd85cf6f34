"""A thin, batched MLflow client for studies and trials."""

from __future__ import annotations

from functools import cache
import re
import subprocess
import time
from typing import Any

from framework.tracking.store import Locations


_BAD_KEY_CHARS = re.compile(r"[^\w./\- :]")
_PARAMS_PER_BATCH = 100  # MLflow's limit per log_batch call
_MAX_PARAM_LENGTH = 6000


class Tracker:
    """Creates and fills the runs of a study through one ``MlflowClient``."""

    def __init__(self, locations: Locations):
        from mlflow import MlflowClient

        self.locations = locations
        self.client = MlflowClient(tracking_uri=locations.tracking_uri)

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

        items = [Param(_key(k), str(v)[:_MAX_PARAM_LENGTH]) for k, v in params.items()]
        for start in range(0, len(items), _PARAMS_PER_BATCH):
            self.client.log_batch(run_id, params=items[start:start + _PARAMS_PER_BATCH])

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int) -> None:
        """All of one step's metrics in a single call."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(_key(k), float(v), now, step) for k, v in metrics.items()]
        self.client.log_batch(run_id, metrics=batch)

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self.client.log_text(run_id, text, artifact_file)

    def log_artifacts(self, run_id: str, local_dir: str, artifact_path: str | None = None) -> None:
        self.client.log_artifacts(run_id, local_dir, artifact_path)

    def end_run(self, run_id: str, status: str) -> None:
        """``status``: FINISHED, FAILED or KILLED."""
        self.client.set_terminated(run_id, status)


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
