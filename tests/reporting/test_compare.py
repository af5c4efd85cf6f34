"""Grouping a study's trials and comparing each group with a baseline group."""

from __future__ import annotations

import optuna
from optuna.distributions import CategoricalDistribution
import pytest
from scipy import stats

from framework.errors import SpecError
from framework.reporting.compare import parse_baseline
from framework.reporting.compare import summarize
from framework.reporting.compare import to_markdown
from framework.reporting.compare import with_baseline


BY = ["regime", "arm"]
DISTRIBUTIONS = {"regime": CategoricalDistribution(["big", "small"]),
                 "arm": CategoricalDistribution(["none", "early"]),
                 "seed": CategoricalDistribution([0, 1, 2])}
ACCURACY = {  # (regime, arm): one value per seed 0, 1, 2
    ("big", "none"): [0.80, 0.82, 0.78], ("big", "early"): [0.83, 0.86, 0.80],
    ("small", "none"): [0.70, 0.69, 0.74], ("small", "early"): [0.71, 0.70, 0.73],
}


def trials() -> list[optuna.trial.FrozenTrial]:
    return numbered([
        optuna.trial.create_trial(
            params={"regime": regime, "arm": arm, "seed": seed}, distributions=DISTRIBUTIONS,
            value=value, user_attrs={"val_accuracy": value})
        for (regime, arm), values in ACCURACY.items() for seed, value in enumerate(values)
    ])


def numbered(trials: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    """As a study numbers them (``create_trial`` leaves every number at -1)."""
    for number, trial in enumerate(trials):
        trial.number = number
    return trials


def test_each_group_is_compared_with_the_baseline_of_its_own_regime_paired_by_seed() -> None:
    groups = with_baseline(summarize(trials(), BY, ["val_accuracy"]), BY, ("arm", "none"))
    by_key = {group.key: group for group in groups}
    assert by_key[("big", "none")].is_baseline and by_key[("small", "none")].is_baseline
    for regime in ("big", "small"):
        difference = by_key[(regime, "early")].differences["val_accuracy"]
        early, none = ACCURACY[(regime, "early")], ACCURACY[(regime, "none")]
        assert difference.test == "paired t"
        assert difference.diff == pytest.approx(sum(early) / 3 - sum(none) / 3)
        assert difference.p_value == pytest.approx(stats.ttest_rel(early, none).pvalue)
    # big: early is higher on every seed by 0.02-0.04; small: +0.01, +0.01, -0.01.
    assert not by_key[("big", "early")].differences["val_accuracy"].within_noise
    assert by_key[("small", "early")].differences["val_accuracy"].within_noise
    text = to_markdown(groups, BY, ["val_accuracy"], ("arm", "none"))
    assert "Δ val_accuracy vs arm=none [95% CI]" in text
    assert text.count("(reference)") == 2 and text.count("paired t, p = ") == 2
    assert "within noise" in text.splitlines()[5]  # small/early, after the header and big rows


def test_a_group_that_ran_a_seed_twice_is_not_paired_and_keeps_every_value() -> None:
    doubled = numbered([*trials(), optuna.trial.create_trial(
        params={"regime": "big", "arm": "early", "seed": 0}, distributions=DISTRIBUTIONS,
        value=0.9, user_attrs={"val_accuracy": 0.9})])
    groups = with_baseline(summarize(doubled, BY, ["val_accuracy"]), BY, ("arm", "none"))
    early = next(g for g in groups if g.key == ("big", "early"))
    assert early.stats["val_accuracy"].n == 4
    assert early.differences["val_accuracy"].test == "Welch t"


@pytest.mark.parametrize(("text", "message"), [
    ("arm", "is not PARAM=VALUE"), ("seed=0", "'seed' is not grouped by"),
])
def test_a_malformed_baseline_names_the_option(text: str, message: str) -> None:
    with pytest.raises(SpecError, match=f"--baseline: .*{message}"):
        parse_baseline(text, BY)


def test_a_baseline_value_no_trial_has_lists_the_values_there_are() -> None:
    groups = summarize(trials(), BY, ["val_accuracy"])
    with pytest.raises(SpecError, match=r"--baseline: no complete trial has arm=late "
                                        r"\(values: early, none\)"):
        with_baseline(groups, BY, ("arm", "late"))
