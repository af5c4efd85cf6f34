"""Continuing a study: new parameters on every invocation, and the threads each trial used."""

from __future__ import annotations

import os

from mlflow import MlflowClient
import optuna
import pytest
import torch

from framework.config import load_spec
from framework.training.device import default_threads
from framework.tuning.study import run_study


@pytest.fixture
def torch_threads():
    """Restore torch's thread count: a run sets it for the whole process."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
def test_three_invocations_draw_three_configurations(
    tiny_study, locations, monkeypatch: pytest.MonkeyPatch, torch_threads
) -> None:
    sampler = "{name: tpe, seed: 0}"  # the default sampler (random until its startup trials)
    # 4 cores with a load of 2.6: one core is free, so each trial runs on 1 thread.
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(os, "getloadavg", lambda: (2.6, 0.0, 0.0))
    for budget in (1, 2, 3):
        run_study(load_spec(tiny_study, [f"search.sampler={sampler}",
                                         f"search.n_trials={budget}"]), locations)

    study = optuna.load_study(study_name="tiny", storage=locations.storage)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 3
    rates = [t.params["dropout.0.p"] for t in study.trials]
    assert len(set(rates)) == 3, f"a continued study repeated its parameters: {rates}"
    assert len({t.value for t in study.trials}) == 3
    client = MlflowClient(locations.tracking_uri)
    for trial in study.trials:
        params = client.get_run(trial.user_attrs["mlflow_run_id"]).data.params
        assert params["train.threads"] == "1"


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")  # ask() outside optimize()
def test_the_first_invocation_keeps_the_seed_as_written(tiny_study, locations) -> None:
    """Fresh studies with the same seed propose the same first point (results repeat)."""
    from framework.tuning.study import open_study

    first = open_study(load_spec(tiny_study), locations).ask().suggest_float("x", 0.0, 1.0)
    again = optuna.samplers.RandomSampler(seed=0)
    expected = optuna.create_study(sampler=again).ask().suggest_float("x", 0.0, 1.0)
    assert first == expected


@pytest.mark.parametrize(
    ("cores", "load", "workers", "expected"),
    [(8, 0.3, 1, 8), (8, 3.2, 1, 5), (8, 3.2, 2, 2), (8, 20.0, 1, 1), (2, 2.5, 2, 1)],
)
def test_default_threads_use_the_free_cores(monkeypatch: pytest.MonkeyPatch, cores: int,
                                            load: float, workers: int, expected: int) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)))
    monkeypatch.setattr(os, "getloadavg", lambda: (load, 0.0, 0.0))
    assert default_threads(workers) == expected


def test_default_threads_without_a_load_average(monkeypatch: pytest.MonkeyPatch) -> None:
    def unavailable() -> tuple[float, float, float]:
        raise OSError("no load average")

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2})
    monkeypatch.setattr(os, "getloadavg", unavailable)
    assert default_threads() == 3


def test_settings_ignore_the_budget_and_operational_keys_and_label_searched_keys() -> None:
    from framework.tuning import fingerprint
    from tests.conftest import ROOT

    quickstart = ROOT / "studies" / "quickstart.yaml"
    base = fingerprint.settings(load_spec(quickstart).spec)
    same = fingerprint.settings(load_spec(quickstart, [
        "search.n_trials=50", "train.threads=1", "description=again", "confirm.seeds=3",
        "search.heartbeat_interval=5"]).spec)
    assert fingerprint.fingerprint(same) == fingerprint.fingerprint(base)
    other = fingerprint.settings(load_spec(quickstart, ["train.max_steps=100"]).spec)
    assert fingerprint.differences(base, other) == {"train.max_steps": (400, 100)}
    label = fingerprint.label(base)
    assert "train.max_steps=400" in label and "train.lr searched" in label


def test_a_setting_added_to_the_tool_later_is_not_a_change_but_a_new_section_is() -> None:
    from framework.tuning.fingerprint import differences

    stored = {"train.lr": 0.001, "dropout.0.name": "standard", "dropout.0.p": 0.1}
    newer = {**stored, "train.target_val_loss": None}  # a field this version added
    assert differences(stored, newer) == {}
    added = {**stored, "dropout.1.name": "r_drop", "dropout.1.alpha": 1.0}
    assert set(differences(stored, added)) == {"dropout.1.name", "dropout.1.alpha"}
    assert set(differences(stored, {**stored, "train.lr": 0.01})) == {"train.lr"}
