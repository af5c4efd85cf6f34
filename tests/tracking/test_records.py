"""What a real trial's MLflow run holds beyond params and metrics: system metrics, its dataset,
its model (loadable with ``mlflow.pytorch.load_model``), and no training state once finished."""

from __future__ import annotations

from pathlib import Path

from mlflow import MlflowClient
import mlflow.pytorch
import optuna
import pytest
import torch

from framework.data.base import Batch
from framework.data.sources import TINY_SHAKESPEARE_SHA256
from framework.models.pruning import load_checkpoint
from framework.tracking import Locations
from framework.tracking.records import MODEL_URI_ATTR
from tests.conftest import TinyRuns


@pytest.fixture
def studies(tiny_runs: TinyRuns) -> tuple[Locations, optuna.Study, optuna.Study]:
    """``searched`` (the defaults) and ``kept`` (``train.keep_last: true``)."""
    storage = tiny_runs.locations.storage
    return (tiny_runs.locations, optuna.load_study(study_name="searched", storage=storage),
            optuna.load_study(study_name="kept", storage=storage))


def run_of(locations: Locations, study: optuna.Study):
    return MlflowClient(locations.tracking_uri).get_run(study.trials[0].user_attrs["mlflow_run_id"])


def test_a_trial_run_has_system_metrics_and_its_dataset_as_input(studies) -> None:
    locations, study, _ = studies
    run = run_of(locations, study)
    system = {k for k in run.data.metrics if k.startswith("system/")}
    assert {"system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"} <= system
    [data] = run.inputs.dataset_inputs
    tags = {t.key: t.value for t in data.tags}
    assert data.dataset.name == "shakespeare_char"
    assert tags["dropout_lab.sha256"] == TINY_SHAKESPEARE_SHA256
    assert data.dataset.digest == TINY_SHAKESPEARE_SHA256[:16]
    assert data.dataset.source.endswith('tinyshakespeare.txt.gz"}')
    assert tags["mlflow.data.context"] == "training"


def test_the_trial_model_loads_back_with_the_logits_of_its_best_checkpoint(
        studies, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    locations, study, _ = studies
    trial = study.trials[0]
    uri = trial.user_attrs[MODEL_URI_ATTR]
    client = MlflowClient(locations.tracking_uri)
    assert client.get_logged_model(uri.removeprefix("models:/")).source_run_id == \
        trial.user_attrs["mlflow_run_id"]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", locations.tracking_uri)
    loaded = mlflow.pytorch.load_model(uri)
    again = mlflow.pytorch.load_model(f"runs:/{trial.user_attrs['mlflow_run_id']}/model")
    best = client.download_artifacts(trial.user_attrs["mlflow_run_id"], "best.pt", str(tmp_path))
    reference = load_checkpoint(Path(best))
    batch = Batch(torch.randint(0, 65, (3, 16), generator=torch.Generator().manual_seed(0)))
    with torch.no_grad():
        expected = reference(batch).logits
        assert torch.equal(loaded(batch).logits, expected)
        assert torch.equal(again(batch).logits, expected)
    assert not loaded.training


def test_the_training_state_is_deleted_once_the_trial_finished_unless_kept(studies) -> None:
    locations, dropped, kept = studies
    client = MlflowClient(locations.tracking_uri)
    for study, expected in ((dropped, []), (kept, ["checkpoint/last.pt"])):
        run_id = study.trials[0].user_attrs["mlflow_run_id"]
        assert [a.path for a in client.list_artifacts(run_id, "checkpoint")] == expected
        assert {"best.pt", "spec.yaml"} <= {a.path for a in client.list_artifacts(run_id)}


def test_the_study_names_its_objectives(studies) -> None:
    locations, study, _ = studies
    assert optuna.load_study(study_name=study.study_name,
                             storage=locations.storage).metric_names == ["val_loss"]
