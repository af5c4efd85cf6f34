"""The stores behind a run: database drivers, and stores created by invocations racing."""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import importlib.util
from pathlib import Path
import uuid

from mlflow import MlflowClient
import optuna
from optuna.trial import TrialState
import pytest

from framework.errors import SpecError
from framework.tracking import Locations
from tests.conftest import TINY_STUDY
from tests.conftest import write_study
from tests.tuning.test_workers import reachable
from tests.tuning.test_workers import run_cli


@pytest.mark.slow
def test_two_runs_started_together_on_a_fresh_home_both_finish(tmp_path: Path) -> None:
    study = write_study(tmp_path, TINY_STUDY.format(name="race"))
    home = tmp_path / "fresh-home"
    processes = [run_cli(["run", str(study), "search.n_trials=2", "--home", str(home)],
                         cwd=tmp_path) for _ in range(2)]
    results = [(p.wait(timeout=600), *p.communicate()) for p in processes]
    for code, _out, err in results:
        assert code == 0, err
        assert "already exists" not in err and "Traceback" not in err
    study_ = optuna.load_study(study_name="race", storage=f"sqlite:///{home / 'optuna.db'}")
    finished = study_.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    assert len(finished) == 2, "the two invocations share one budget"
    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    experiments = [e for e in client.search_experiments() if e.name == "race"]
    assert len(experiments) == 1
    parents = client.search_runs([experiments[0].experiment_id],
                                 "tags.dropout_lab.role = 'study'")
    assert sorted(r.info.status for r in parents) == ["FINISHED", "FINISHED"]


def test_a_missing_database_driver_is_one_clear_error_naming_the_package(tmp_path: Path) -> None:
    study = write_study(tmp_path, TINY_STUDY.format(name="driver"))
    # pg8000 is a PostgreSQL driver SQLAlchemy knows but the project does not install.
    if importlib.util.find_spec("pg8000") is not None:
        pytest.skip("pg8000 is installed here, so its URL cannot stand for a missing driver")
    url = "postgresql+pg8000://postgres:pw@127.0.0.1:5432/test"
    process = run_cli(["run", str(study), "--storage", url], cwd=tmp_path)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 2, err
    assert "Traceback" not in err
    assert err.startswith("error: --storage: ") and "pip install 'pg8000'" in err
    assert "pw@" not in out + err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.yaml"], "nothing created"
    # The tracking URI goes through the same check (in-process: no second interpreter).
    with pytest.raises(SpecError, match="pip install 'pg8000'") as error:
        Locations.resolve(tmp_path / "home", tracking_uri=url)
    assert error.value.key == "--tracking-uri"


@pytest.mark.slow
@pytest.mark.db
def test_the_readme_postgresql_url_runs_a_study(tmp_path: Path) -> None:
    url = "postgresql://postgres@127.0.0.1:5432/test"  # as the README writes it: no +driver
    reason = reachable(url)
    if reason:
        pytest.skip(reason)
    name = f"readme-url-{uuid.uuid4().hex[:8]}"
    study = write_study(tmp_path, TINY_STUDY.format(name=name))
    try:
        process = run_cli(["run", str(study), "search.n_trials=1", "--storage", url],
                          cwd=tmp_path)
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
        assert "Traceback" not in err
        trials = optuna.load_study(study_name=name, storage=url).get_trials()
        assert [t.state for t in trials] == [TrialState.COMPLETE]
    finally:
        with contextlib.suppress(KeyError):
            optuna.delete_study(study_name=name, storage=url)


@contextlib.contextmanager
def another_program_creates_first(url: str, table_name: str) -> Iterator[list[str]]:
    """Within it, the first CREATE of Optuna's table ``table_name`` finds that another engine
    (standing for another process) has just created that table; yields the tables it did so for.
    """
    from optuna.storages._rdb import models
    import sqlalchemy

    other_program = sqlalchemy.create_engine(url)
    collided: list[str] = []

    def create_it_first(table: sqlalchemy.Table, connection: object, **_: object) -> None:
        if not collided:
            collided.append(table.name)
            table.create(other_program)

    table = models.BaseModel.metadata.tables[table_name]
    sqlalchemy.event.listen(table, "before_create", create_it_first)
    try:
        yield collided
    finally:
        sqlalchemy.event.remove(table, "before_create", create_it_first)
        other_program.dispose()


def test_tables_that_another_program_creates_at_the_same_moment_are_no_error(
    tmp_path: Path,
) -> None:
    """``optuna.load_study`` in another process (a dashboard, a test polling the study) creates
    the tables too; when it does so between this process's check and its CREATE, the collision
    must not stop the run (CI once failed with "table trials already exists")."""
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    with another_program_creates_first(url, "trials") as collided:
        Locations.resolve(tmp_path, storage=url).prepare()
    assert collided == ["trials"]
    study = optuna.create_study(study_name="after", storage=url)
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=1)
    assert study.trials[0].state == TrialState.COMPLETE


def test_every_open_of_the_storage_survives_another_program_creating_its_tables(
    tmp_path: Path,
) -> None:
    """Not only ``prepare``: a study with arms looks its arms up before preparing the stores, and
    CI once failed there ("table studies already exists") while a test polled the new storage."""
    from framework.tuning.storage import make_storage

    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    with another_program_creates_first(url, "studies") as collided:
        storage = make_storage(url)
    assert collided == ["studies"]
    assert optuna.create_study(study_name="opened", storage=storage).study_name == "opened"


def test_arms_refused_on_a_fresh_home_leave_no_storage_behind(tmp_path: Path) -> None:
    import torch

    from framework.config import load_spec
    from framework.tuning.confirm import check_arms

    if torch.cuda.is_available():
        pytest.skip("an arm on `cuda` runs here: it cannot stand for an arm refused")
    study = write_study(tmp_path, TINY_STUDY.format(name="refused") + (
        "arms:\n  here: {search: {n_trials: 1}}\n  gpu: {train: {device: cuda}}\n"))
    home = tmp_path / "home"
    with pytest.raises(SpecError, match="cannot run here") as error:
        check_arms(load_spec(study), Locations.resolve(home))
    assert error.value.key == "train.device"
    assert not home.exists(), "the first arm's lookup created the storage"
