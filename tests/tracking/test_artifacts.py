"""Where artifacts go: with the study's stores (``--home``) or where ``--artifacts`` says, never
into the folder a command happens to run in; and metrics on a database store stored once, with
nothing on stderr from its driver."""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import logging
from pathlib import Path
import uuid

from mlflow import MlflowClient
import pytest

from framework.tracking import Locations
from framework.tracking import Tracker
from framework.tracking.store import artifact_root
from framework.tracking.tracker import quiet_redundant_driver_warnings
from tests.cli.test_refused_input import run_refused
from tests.conftest import TINY_STUDY
from tests.conftest import write_study
from tests.tuning.test_workers import POSTGRES
from tests.tuning.test_workers import reachable
from tests.tuning.test_workers import run_cli


@contextlib.contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database (its SQLAlchemy URL), dropped afterwards."""
    import psycopg

    name = f"dl_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    try:
        yield POSTGRES.replace("/test", f"/{name}").replace("postgresql:", "postgresql+psycopg:")
    finally:
        with psycopg.connect(POSTGRES, autocommit=True) as connection:
            connection.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.mark.slow
@pytest.mark.db
def test_a_study_tracked_in_postgresql_keeps_its_artifacts_under_its_home(tmp_path: Path) -> None:
    reason = reachable(POSTGRES)
    if reason:
        pytest.skip(reason)
    study = write_study(tmp_path, TINY_STUDY.format(name="pg-artifacts"))
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    elsewhere.mkdir()
    with fresh_postgres_database() as tracking:
        process = run_cli(["run", str(study), "search.n_trials=1", "--home", str(home),
                           "--tracking-uri", tracking], cwd=elsewhere)
        _out, err = process.communicate(timeout=300)
        client = MlflowClient(tracking)
        location = client.get_experiment_by_name("pg-artifacts").artifact_location
    assert process.returncode == 0, err
    assert "Traceback" not in err and "pipeline aborted" not in err, err
    assert location == f"{(home / 'artifacts').as_uri()}/pg-artifacts"
    assert list((home / "artifacts").rglob("spec.yaml")), "the trial's spec.yaml is under --home"
    assert list(elsewhere.iterdir()) == [], "nothing in the working directory"


def test_artifacts_option_places_new_experiments_and_an_existing_one_stays(
        tmp_path: Path) -> None:
    tracking = f"sqlite:///{tmp_path / 'db' / 'mlflow.db'}"
    chosen = Locations.resolve(tmp_path / "home", tracking_uri=tracking,
                               artifacts=str(tmp_path / "chosen"))
    chosen.prepare()
    tracker = Tracker(chosen)
    experiment_id = tracker.experiment_id("placed")
    location = (tmp_path / "chosen").as_uri() + "/placed"
    assert tracker.client.get_experiment(experiment_id).artifact_location == location
    # A later invocation given another place finds the experiment where it was made.
    moved = Tracker(chosen.with_artifacts(str(tmp_path / "other")))
    assert moved.experiment_id("placed") == experiment_id
    assert moved.client.get_experiment(experiment_id).artifact_location == location
    # Without --artifacts, a new study of that database keeps its artifacts under --home.
    default = Tracker(Locations.resolve(tmp_path / "home", tracking_uri=tracking))
    new = default.client.get_experiment(default.experiment_id("fresh"))
    assert new.artifact_location == (tmp_path / "home" / "artifacts").as_uri() + "/fresh"


def test_artifact_roots_by_tracking_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    home = tmp_path / "home"
    under_home = (home / "artifacts").as_uri()
    assert artifact_root(home, None, None) == under_home
    assert artifact_root(home, "mysql+pymysql://root@127.0.0.1:3306/runs", None) == under_home
    assert artifact_root(home, "https://mlflow.example.org", None) is None, "the server's own"
    assert artifact_root(home, "https://mlflow.example.org", "s3://bucket/runs/") == \
        "s3://bucket/runs"
    monkeypatch.chdir(tmp_path)
    assert artifact_root(home, None, "relative/art") == (tmp_path / "relative/art").as_uri()


def test_an_artifacts_option_that_is_a_file_is_refused_naming_it(tmp_path: Path) -> None:
    study = write_study(tmp_path, TINY_STUDY.format(name="refused"))
    taken = tmp_path / "taken.txt"
    taken.write_text("not a folder")
    err = run_refused(tmp_path, study, "--artifacts", str(taken / "art"), source="--artifacts")
    assert f"{taken} is a file" in err


def test_a_metric_call_resent_after_its_answer_was_lost_stores_each_point_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    locations = Locations.resolve(tmp_path / "home")
    locations.prepare()
    tracker = Tracker(locations, timeout=60)
    run_id = tracker.start_run(tracker.experiment_id("resent"), "trial", {})
    store = tracker.client.log_batch
    lost = [ConnectionError("the answer was lost")]

    def committed_then_lost(*args: object, **kwargs: object) -> None:
        store(*args, **kwargs)
        if lost:
            raise lost.pop()

    monkeypatch.setattr(tracker.client, "log_batch", committed_then_lost)
    tracker.log_metrics(run_id, {"val_loss": 1.5, "lr": 0.1}, step=3)
    tracker.flush(wait=10)  # sends the call again: its rows are stored already
    assert not lost, "the first answer was lost"
    for key, value in (("val_loss", 1.5), ("lr", 0.1)):
        history = tracker.client.get_metric_history(run_id, key)
        assert [(m.step, m.value) for m in history] == [(3, value)]


def test_psycopg_s_redundant_pipeline_warning_is_dropped_and_its_other_warnings_kept(
        caplog: pytest.LogCaptureFixture) -> None:
    driver_log = logging.getLogger("psycopg")
    quiet_redundant_driver_warnings()
    installed = list(driver_log.filters)
    quiet_redundant_driver_warnings()
    assert driver_log.filters == installed, "idempotent: one filter"
    with caplog.at_level(logging.WARNING, logger="psycopg"):
        driver_log.warning("error ignored terminating %r: %s", "<psycopg.Pipeline [INERROR]>",
                           "pipeline aborted")
        driver_log.warning("server closed the connection unexpectedly")
    assert [r.getMessage() for r in caplog.records] == [
        "server closed the connection unexpectedly"]
