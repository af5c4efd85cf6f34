"""The one-line description of a finished trial that the displays print (a trial made outside
a study has the number -1)."""

from __future__ import annotations

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from framework.cli.progress import describe


def test_a_searched_trial_shows_its_parameters() -> None:
    trial = optuna.trial.create_trial(
        value=2.16481, params={"dropout.0.p": 0.0021},
        distributions={"dropout.0.p": FloatDistribution(0.0, 0.3)})
    assert describe(trial) == "trial -1 complete: 2.1648  (dropout.0.p=0.0021)"


def test_a_fixed_configuration_shows_no_empty_parameter_list() -> None:
    failed = optuna.trial.create_trial(state=TrialState.FAIL, user_attrs={"fail_reason": "NaN"})
    assert describe(failed) == "trial -1 fail: NaN"


def test_a_trial_with_a_warning_shows_it_on_the_next_line() -> None:
    trial = optuna.trial.create_trial(value=0.64, user_attrs={"warning": "every rate was 0"})
    assert describe(trial) == "trial -1 complete: 0.6400\n  warning: every rate was 0"
