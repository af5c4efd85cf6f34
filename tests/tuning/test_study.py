"""A real study end to end, checked with the clients a researcher would use."""

from __future__ import annotations

import socket
from typing import Literal

from mlflow import MlflowClient
import optuna
from optuna.trial import TrialState
import pytest

from framework import registry
from framework.config import load_spec
from framework.strategies.base import RateConfig
from framework.strategies.base import RateStrategy
from framework.training.device import cpu_name
from framework.tuning.study import run_study


def child_runs(client: MlflowClient, experiment_id: str, parent: str):
    return client.search_runs([experiment_id], f"tags.mlflow.parentRunId = '{parent}'")


def test_two_trials_leave_optuna_trials_and_nested_mlflow_runs(tiny_study, locations) -> None:
    outcome = run_study(load_spec(tiny_study), locations)

    study = optuna.load_study(study_name="tiny", storage=locations.storage)
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 2
    client = MlflowClient(locations.tracking_uri)
    experiment = client.get_experiment_by_name("tiny")
    parents = client.search_runs([experiment.experiment_id], "tags.dropout_lab.role = 'study'")
    assert [p.info.run_id for p in parents] == [outcome.parent_run_id]
    assert parents[0].info.status == "FINISHED"
    children = child_runs(client, experiment.experiment_id, outcome.parent_run_id)
    assert sorted(r.info.run_id for r in children) == sorted(
        t.user_attrs["mlflow_run_id"] for t in trials)
    for trial in trials:
        run = client.get_run(trial.user_attrs["mlflow_run_id"])
        assert run.info.status == "FINISHED"
        assert float(run.data.params["dropout.0.p"]) == pytest.approx(trial.params["dropout.0.p"])
        assert run.data.metrics["final/val_loss"] == pytest.approx(trial.value)
        assert run.data.tags["dropout_lab.trial"] == str(trial.number)
        assert run.data.tags["dropout_lab.host"] == socket.gethostname()
        assert run.data.tags["dropout_lab.cpu"] == cpu_name()
        history = client.get_metric_history(run.info.run_id, "val_loss")
        assert [m.step for m in history] == [3, 6]
        assert "rate/attention" in run.data.metrics
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"spec.yaml", "best.pt"} <= artifacts


def test_running_again_continues_to_the_total_budget(tiny_study, locations) -> None:
    run_study(load_spec(tiny_study), locations)
    run_study(load_spec(tiny_study, ["search.n_trials=3"]), locations)
    run_study(load_spec(tiny_study, ["search.n_trials=3"]), locations)
    study = optuna.load_study(study_name="tiny", storage=locations.storage)
    assert len(study.trials) == 3
    client = MlflowClient(locations.tracking_uri)
    experiment = client.get_experiment_by_name("tiny")
    parents = client.search_runs([experiment.experiment_id], "tags.dropout_lab.role = 'study'")
    assert len(parents) == 3


class InterruptConfig(RateConfig):
    name: Literal["interrupt_test"] = "interrupt_test"


class Interrupt(RateStrategy):
    """Acts like Ctrl-C during the second trial's fourth step."""

    calls = 0

    def rate(self, step: int, total_steps: int) -> float:
        Interrupt.calls += 1
        if Interrupt.calls == 7 + 4:  # trial 0 makes 7 calls (attach + 6 steps)
            raise KeyboardInterrupt
        return 0.1


def test_an_interrupted_study_continues_where_it_stopped(tiny_study, locations) -> None:
    registry.register_strategy("interrupt_test", config=InterruptConfig)(Interrupt)
    try:
        loaded = load_spec(tiny_study, ["dropout=[{name: interrupt_test}]",
                                        "search.space={}", "search.n_trials=3"])
        with pytest.raises(KeyboardInterrupt):
            run_study(loaded, locations)
        study = optuna.load_study(study_name="tiny", storage=locations.storage)
        assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.FAIL]
        client = MlflowClient(locations.tracking_uri)
        killed = client.get_run(study.trials[1].user_attrs["mlflow_run_id"])
        assert killed.info.status == "KILLED"

        run_study(loaded, locations)
        states = [t.state for t in study.trials]
        assert states.count(TrialState.COMPLETE) == 3 and states[1] == TrialState.FAIL
    finally:
        registry.strategies.remove("interrupt_test")


class NaNConfig(RateConfig):
    name: Literal["nan_study_test"] = "nan_study_test"


class NaNAfterAttach(RateStrategy):
    """Makes the loss NaN: a trial that diverges."""

    def compute_loss(self, model, batch):
        from framework.strategies.base import LossResult

        return LossResult(model(batch).loss * float("nan"))

    def rate(self, step: int, total_steps: int) -> float:
        return 0.0


def test_a_diverging_trial_fails_with_its_reason_and_the_study_goes_on(
    tiny_study, locations
) -> None:
    registry.register_strategy("nan_study_test", config=NaNConfig)(NaNAfterAttach)
    try:
        space = ("search.space={dropout.0: {type: choice, options: {"
                 "bad: {value: {name: nan_study_test}}, good: {value: {name: standard}}}}}")
        outcome = run_study(load_spec(tiny_study, [space, "search.n_trials=4"]), locations)
        trials = outcome.study.trials
        failed = [t for t in trials if t.state == TrialState.FAIL]
        assert failed and all(t.params["dropout.0"] == "bad" for t in failed)
        assert "not finite" in failed[0].user_attrs["fail_reason"]
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        assert complete and all(t.params["dropout.0"] == "good" for t in complete)
        client = MlflowClient(locations.tracking_uri)
        run = client.get_run(failed[0].user_attrs["mlflow_run_id"])
        assert run.info.status == "FAILED"
        assert "not finite" in run.data.tags["dropout_lab.fail_reason"]
    finally:
        registry.strategies.remove("nan_study_test")


def test_two_objectives_make_a_pareto_study(tiny_study, locations) -> None:
    objectives = ("search.objectives=[{metric: val_loss, direction: minimize}, "
                  "{metric: train_time, direction: minimize}]")
    outcome = run_study(load_spec(tiny_study, [objectives]), locations)
    assert len(outcome.study.directions) == 2
    trial = outcome.study.best_trials[0]
    assert trial.values == [trial.user_attrs["val_loss"], trial.user_attrs["train_time"]]
