import copy

import optuna

from framework.config.space import ChoiceParam
from framework.config.space import FloatParam
from framework.tuning.space import suggest


SPACE = {
    "train.lr": FloatParam(type="float", low=1e-4, high=1e-2, log=True),
    "dropout.0": ChoiceParam.model_validate({"type": "choice", "options": {
        "fixed": {"value": {"name": "standard"},
                  "space": {"p": {"type": "float", "low": 0.0, "high": 0.5}}},
        "off": {"value": {"name": "none"}},
    }}),
}


def test_conditional_space_suggests_only_the_chosen_options_parameters() -> None:
    raw = {"train": {"lr": 1e-3}, "dropout": [{"name": "standard", "p": 0.1}]}
    seen = {"fixed": 0, "off": 0}

    def objective(trial: optuna.Trial) -> float:
        trial_raw = copy.deepcopy(raw)
        suggest(trial, SPACE, trial_raw)
        choice = trial.params["dropout.0"]
        seen[choice] += 1
        entry = trial_raw["dropout"][0]
        if choice == "fixed":
            assert set(trial.params) == {"train.lr", "dropout.0", "dropout.0/fixed/p"}
            assert entry == {"name": "standard", "p": trial.params["dropout.0/fixed/p"]}
        else:
            assert set(trial.params) == {"train.lr", "dropout.0"}
            assert entry == {"name": "none"}
        assert trial_raw["train"]["lr"] == trial.params["train.lr"]
        return 0.0

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=20)
    assert seen["fixed"] > 0 and seen["off"] > 0
