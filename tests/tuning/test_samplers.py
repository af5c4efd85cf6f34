import copy

import optuna
import pytest

from framework.config import load_spec
from framework.tuning.samplers import make_pruner
from framework.tuning.samplers import make_sampler
from framework.tuning.space import suggest
from tests.conftest import ROOT


SAMPLERS = ["tpe", "random", "grid", "cmaes", "gp", "nsgaii"]


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_sampler_searches_the_spec_space(sampler: str) -> None:
    space = ("search.space={dropout.0.p: {type: float, low: 0.0, high: 0.2, step: 0.1}, "
             "train.batch_size: {type: int, low: 8, high: 16, step: 8}}")
    loaded = load_spec(ROOT / "studies" / "quickstart.yaml",
                       [space, f"search.sampler={{name: {sampler}, seed: 1}}"])
    study = optuna.create_study(sampler=make_sampler(loaded.spec.search))

    def objective(trial: optuna.Trial) -> float:
        raw = copy.deepcopy(loaded.raw)
        suggest(trial, loaded.spec.search.space, raw)
        assert raw["dropout"][0]["p"] in (0.0, 0.1, 0.2)
        return raw["dropout"][0]["p"] + raw["train"]["batch_size"] / 100

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study.optimize(objective, n_trials=6)
    assert len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == 6
    if sampler == "grid":  # 3 x 2 points: a grid visits each exactly once
        assert len({tuple(t.params.values()) for t in study.trials}) == 6


@pytest.mark.parametrize("pruner", ["median", "hyperband", "successive_halving", "none"])
def test_every_pruner_is_fed_intermediate_values(pruner: str) -> None:
    loaded = load_spec(ROOT / "studies" / "quickstart.yaml",
                       [f"search.pruner={{name: {pruner}}}", "train.max_steps=100"])
    study = optuna.create_study(pruner=make_pruner(loaded.spec.search, 100))
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    pruned = 0
    for good in [True, True, True, False, False, False]:
        trial = study.ask()
        for step in range(10, 101, 10):
            trial.report(1.0 if good else 5.0, step)
            if trial.should_prune():
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                pruned += 1
                break
        else:
            study.tell(trial, 1.0 if good else 5.0)
    assert (pruned == 0) == (pruner == "none")
