"""The statistics against scipy's own results on known samples."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from framework.reporting.stats import compare
from framework.reporting.stats import summarize


A = [2.31, 2.27, 2.35, 2.29, 2.33]
B = [2.40, 2.36, 2.45, 2.38, 2.41]


def test_summary_matches_scipy() -> None:
    s = summarize(A)
    assert s.n == 5
    assert s.mean == pytest.approx(np.mean(A))
    assert s.std == pytest.approx(np.std(A, ddof=1))
    assert s.se == pytest.approx(stats.sem(A))
    low, high = stats.t.interval(0.95, len(A) - 1, loc=np.mean(A), scale=stats.sem(A))
    assert (s.ci_low, s.ci_high) == pytest.approx((low, high))
    wider = summarize(A, confidence=0.99)
    assert wider.ci_low < s.ci_low and wider.ci_high > s.ci_high


def test_single_value_has_no_spread() -> None:
    s = summarize([1.5])
    assert s.mean == 1.5 and math.isnan(s.std) and math.isnan(s.ci_low)
    with pytest.raises(ValueError):
        summarize([])


def test_shared_seeds_give_scipys_paired_test_and_interval() -> None:
    d = compare(dict(enumerate(A)), dict(enumerate(B)))
    reference = stats.ttest_rel(A, B)
    ci = reference.confidence_interval(0.95)
    assert d.test == "paired t" and d.df == len(A) - 1
    assert d.diff == pytest.approx(np.mean(A) - np.mean(B))
    assert d.statistic == pytest.approx(reference.statistic)
    assert d.p_value == pytest.approx(reference.pvalue)
    assert (d.ci_low, d.ci_high) == pytest.approx((ci.low, ci.high))
    assert not d.within_noise


def test_different_seeds_give_scipys_welch_test_and_interval() -> None:
    b = B[:4]
    d = compare(dict(enumerate(A)), {10 + i: v for i, v in enumerate(b)})
    reference = stats.ttest_ind(A, b, equal_var=False)
    ci = reference.confidence_interval(0.95)
    assert d.test == "Welch t"
    assert d.statistic == pytest.approx(reference.statistic)
    assert d.p_value == pytest.approx(reference.pvalue)
    assert d.df == pytest.approx(reference.df)
    assert (d.ci_low, d.ci_high) == pytest.approx((ci.low, ci.high))


def test_overlapping_samples_are_reported_within_noise() -> None:
    noisy = [2.30, 2.45, 2.25, 2.40, 2.33]
    d = compare(dict(enumerate(A)), dict(enumerate(noisy)))
    assert d.ci_low < 0 < d.ci_high
    assert d.within_noise


def test_too_few_seeds_is_not_testable() -> None:
    d = compare({0: 1.0}, {1: 2.0, 2: 2.1})
    assert d.test == "none" and d.within_noise


def test_identical_paired_differences_give_no_zero_width_interval_and_no_p_of_zero() -> None:
    # A discrete metric (steps in hundreds) at 3 seeds: every difference is -100.
    d = compare({1: 1200.0, 2: 1300.0, 3: 1100.0}, {1: 1300.0, 2: 1400.0, 3: 1200.0})
    assert d.test == "sign-flip" and d.diff == -100.0
    assert np.isnan(d.ci_low) and np.isnan(d.ci_high) and d.within_noise
    assert d.p_value == pytest.approx(0.25)  # 2 / 2^3: all three seeds can show no more
