"""Statistics over seeds: is a configuration's effect larger than seed noise?

Per configuration: mean, sample standard deviation (n - 1), standard error and a confidence
interval from the t distribution. Against a baseline: the difference of means with its confidence
interval and a t-test, paired over the seeds both share (the same seed gives both the same data
order and initialisation, so pairing removes that part of the noise) and Welch's unequal-variance
test otherwise. scipy is imported inside the functions so that importing this module stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Literal


CONFIDENCE = 0.95


@dataclass(frozen=True)
class Summary:
    """One metric of one configuration over its seeds."""

    n: int
    mean: float
    std: float
    """Sample standard deviation (n - 1 in the denominator); NaN for a single value."""
    se: float
    ci_low: float
    ci_high: float
    confidence: float = CONFIDENCE

    def __str__(self) -> str:
        if self.n < 2:
            return f"{self.mean:.4f} (n=1)"
        return f"{self.mean:.4f} ± {self.se:.4f} [{self.ci_low:.4f}, {self.ci_high:.4f}]"


@dataclass(frozen=True)
class Difference:
    """``candidate - baseline`` for one metric, with its confidence interval and test."""

    diff: float
    ci_low: float
    ci_high: float
    test: Literal["paired t", "sign-flip", "Welch t", "none"]
    statistic: float
    p_value: float
    df: float
    n_candidate: int
    n_baseline: int
    confidence: float = CONFIDENCE

    @property
    def within_noise(self) -> bool:
        """True when the interval contains 0 (or cannot be computed): no evidence of an effect."""
        if math.isnan(self.ci_low) or math.isnan(self.ci_high):
            return True
        return self.ci_low <= 0.0 <= self.ci_high

    def __str__(self) -> str:
        if math.isnan(self.ci_low):
            return f"{self.diff:+.4f}"
        return f"{self.diff:+.4f} [{self.ci_low:+.4f}, {self.ci_high:+.4f}]"


def summarize(values: list[float], confidence: float = CONFIDENCE) -> Summary:
    """Mean, std, standard error and the t-distribution CI of the mean of ``values``.

    Raises:
        ValueError: when ``values`` is empty.
    """
    if not values:
        raise ValueError("no values to summarise")
    n = len(values)
    mean = math.fsum(values) / n
    if n < 2:
        return Summary(n, mean, math.nan, math.nan, math.nan, math.nan, confidence)
    from scipy import stats

    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    se = std / math.sqrt(n)
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * se
    return Summary(n, mean, std, se, mean - half, mean + half, confidence)


def compare(candidate: dict[int, float], baseline: dict[int, float],
            confidence: float = CONFIDENCE) -> Difference:
    """Compare two configurations whose values are keyed by seed.

    When the two share every seed (and there are at least two), the test is paired on the
    per-seed differences; otherwise Welch's t-test on all values of each side.
    """
    a, b = list(candidate.values()), list(baseline.values())
    diff = (math.fsum(a) / len(a) - math.fsum(b) / len(b)) if a and b else math.nan
    if set(candidate) == set(baseline) and len(candidate) >= 2:
        return _paired(candidate, baseline, confidence)
    if len(a) < 2 or len(b) < 2:
        return Difference(diff, math.nan, math.nan, "none", math.nan, math.nan, math.nan,
                          len(a), len(b), confidence)
    return _welch(a, b, confidence)


def _paired(candidate: dict[int, float], baseline: dict[int, float],
            confidence: float) -> Difference:
    from scipy import stats

    seeds = sorted(candidate)
    deltas = [candidate[s] - baseline[s] for s in seeds]
    summary = summarize(deltas, confidence)
    n = len(seeds)
    if summary.std == 0.0:
        # Identical differences (a discrete metric at few seeds): a t interval would have zero
        # width and p = 0. The exact sign-flip test says what n seeds can show (p >= 2 / 2^n).
        from framework.reporting.intervals import seed_interval

        exact = seed_interval(deltas)
        return Difference(summary.mean, math.nan, math.nan, "sign-flip", math.nan,
                          exact.p_value, n - 1, n, n, confidence)
    result = stats.ttest_rel([candidate[s] for s in seeds], [baseline[s] for s in seeds])
    return Difference(summary.mean, summary.ci_low, summary.ci_high, "paired t",
                      float(result.statistic), float(result.pvalue), n - 1, n, n, confidence)


def _welch(a: list[float], b: list[float], confidence: float) -> Difference:
    from scipy import stats

    sa, sb = summarize(a, confidence), summarize(b, confidence)
    va, vb = sa.se ** 2, sb.se ** 2
    diff = sa.mean - sb.mean
    se = math.sqrt(va + vb)
    if se == 0.0:  # no spread on either side: nothing to test against, and no interval
        return Difference(diff, math.nan, math.nan, "none", math.nan, math.nan, math.nan,
                          sa.n, sb.n, confidence)
    # Welch-Satterthwaite degrees of freedom.
    df = (va + vb) ** 2 / (va ** 2 / (sa.n - 1) + vb ** 2 / (sb.n - 1))
    half = stats.t.ppf(0.5 + confidence / 2, df) * se
    result = stats.ttest_ind(a, b, equal_var=False)
    return Difference(diff, diff - half, diff + half, "Welch t", float(result.statistic),
                      float(result.pvalue), df, sa.n, sb.n, confidence)
