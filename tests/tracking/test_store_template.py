"""New SQLite homes start from a pre-migrated MLflow store: MLflow's migrations run once."""

from pathlib import Path

from mlflow import MlflowClient
import mlflow.store.db.utils
import pytest

from framework.tracking import Locations
from framework.tracking.store import TEMPLATE_DIR_ENV


@pytest.fixture
def migrations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every run of MLflow's table creation and migrations, by database URL."""
    real = mlflow.store.db.utils._initialize_tables
    calls: list[str] = []

    def counted(engine) -> None:
        calls.append(str(engine.url))
        real(engine)

    monkeypatch.setattr(mlflow.store.db.utils, "_initialize_tables", counted)
    return calls


def test_homes_after_the_first_copy_the_template(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 migrations: list[str]) -> None:
    monkeypatch.setenv(TEMPLATE_DIR_ENV, str(tmp_path / "cache"))
    first, second = (Locations.resolve(tmp_path / name) for name in ("first", "second"))
    first.prepare()
    assert len(migrations) == 1 and "cache" in migrations[0], "the template is built once"
    second.prepare()
    assert len(migrations) == 1, "a second home ran MLflow's migrations again"
    assert [p.name for p in (tmp_path / "cache").glob("mlflow-*.db")]
    client = MlflowClient(tracking_uri=second.tracking_uri)
    assert [e.name for e in client.search_experiments()] == ["Default"]
    experiment = client.create_experiment("x", artifact_location=second.artifact_root)
    run = client.create_run(experiment).info.run_id
    client.log_metric(run, "val_loss", 1.5, step=3)
    assert client.get_run(run).data.metrics == {"val_loss": 1.5}
    assert not list((tmp_path / "second").glob("*.tmp")), "a partial copy was left behind"


def test_an_unusable_cache_leaves_the_store_to_mlflow(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      migrations: list[str]) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    monkeypatch.setenv(TEMPLATE_DIR_ENV, str(blocked))
    locations = Locations.resolve(tmp_path / "home")
    locations.prepare()
    assert len(migrations) == 1 and "home" in migrations[0]
    assert [e.name for e in MlflowClient(tracking_uri=locations.tracking_uri)
            .search_experiments()] == ["Default"]
