"""Confidence intervals, p-values and power for a claim that a candidate beats a baseline.

A claim compares a candidate and a baseline trained with the same ``n`` seeds and scored on the
same ``m`` test examples. ``d[s, i]`` is candidate minus baseline for seed ``s`` and example ``i``
(paired), modelled as ``d[s, i] = mu + a_s + b_i + e_si``: a seed effect, a test-example effect
and a residual. The grand mean ``D`` estimates ``mu`` with

    Var(D) = sigma_a^2 / n + sigma_b^2 / m + sigma_e^2 / (n m).

Two intervals for ``mu`` are offered:

* ``seed_interval``: the paired t interval over the per-seed differences. Its variance,
  ``MS_A / (n m)``, holds the seed and residual terms only, so it is conditional on the test set:
  it says how sure we are that the candidate is better *on this test set*.
* ``crossed_interval``: seeds and test examples as crossed random factors (Bouthillier et al.),
  adding the test-set term estimated by two-way ANOVA without replication, with Satterthwaite's
  degrees of freedom. It says how sure we are that the candidate is better on the population the
  test set was drawn from.

When the differences have no spread at all (every seed gives the same difference), there is no
standard error to build a t interval from; the p-value is then the exact sign-flip permutation
test, which never reaches 0 however many seeds agree. ``holm`` adjusts the p-values of several
claims, and ``Interval.detectable`` gives the smallest effect a design would detect with a given
power, the question a study that finds nothing must answer.

References:
    Bouthillier et al., "Accounting for Variance in Machine Learning Benchmarks", MLSys 2021.
    Satterthwaite, "An Approximate Distribution of Estimates of Variance Components",
    Biometrics Bulletin 2(6), 1946.
    Holm, "A Simple Sequentially Rejective Multiple Test Procedure", Scandinavian Journal of
    Statistics 6(2), 1979.
    Card et al., "With Little Power Comes Great Responsibility", EMNLP 2020.

scipy is imported inside the functions so that importing this module stays cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
import math
from typing import Literal

import numpy as np


CONFIDENCE = 0.95
POWER = 0.8
FEW_SEEDS = 5
"""Below this many seeds the crossed interval keeps the seed-only degrees of freedom."""

# Relative size below which a spread counts as none: differences that agree to ~12 digits are
# rounding noise around identical values, and a t statistic built on them would be meaningless.
_TIE_TOLERANCE = 1e-12

Method = Literal["seeds", "seeds and examples", "sign-flip"]


@dataclass(frozen=True)
class Interval:
    """The estimate of ``mu`` (candidate minus baseline) with what is needed to test it."""

    estimate: float
    """``D``, the mean paired difference (candidate - baseline)."""
    se: float
    """Standard error of ``D``: 0.0 when the differences have no spread, NaN when n < 2."""
    df: float
    """Degrees of freedom of the t reference distribution (NaN when undefined)."""
    method: Method
    """Paired t over "seeds", crossed "seeds and examples", or exact "sign-flip" (no spread)."""
    n_seeds: int
    n_examples: int | None
    """None for the seed-only method."""
    p_value: float
    """Two-sided p for H0: mu = 0; the interval at level c excludes 0 exactly when p < 1 - c.

    In the sign-flip case there are no bounds, and p (2/2^n) is the exact permutation p-value.
    """

    def bounds(self, confidence: float = CONFIDENCE) -> tuple[float, float]:
        """``D -/+ t(0.5 + c/2, df) * se``; (NaN, NaN) when there is no standard error.

        A zero standard error (the sign-flip case) gives (NaN, NaN), not a zero-width interval:
        identical differences say nothing about how far the next seed could land.
        """
        _check_probability("confidence", confidence)
        if not _has_t_reference(self):
            return (math.nan, math.nan)
        from scipy import special

        half = float(special.stdtrit(self.df, 0.5 + confidence / 2.0)) * self.se
        return (self.estimate - half, self.estimate + half)

    def p_beyond(self, margin: float, side: Literal["below", "above"]) -> float:
        """One-sided p that ``mu`` lies beyond ``margin`` on ``side`` (a non-inferiority test).

        ``side="below"`` tests H0: mu >= margin against mu < margin (a lower-is-better metric,
        margin > 0 being the tolerated loss); ``side="above"`` tests H0: mu <= margin against
        mu > margin. In the sign-flip case the p-value is the exact one-sided sign-flip test of
        the differences minus ``margin``: 1/2^n when they all lie on the claimed side, else 1.
        """
        if side not in ("below", "above"):
            raise ValueError(f"side must be 'below' or 'above', got {side!r}")
        if self.se == 0.0:
            shift = self.estimate - margin
            tolerance = _TIE_TOLERANCE * max(1.0, abs(self.estimate), abs(margin))
            claimed = shift < -tolerance if side == "below" else shift > tolerance
            # Only the assignment with every sign as observed is as extreme as the data.
            return 0.5**self.n_seeds if claimed else 1.0
        if not _has_t_reference(self):
            return math.nan
        from scipy import special

        t = (self.estimate - margin) / self.se
        return float(special.stdtr(self.df, t if side == "below" else -t))

    def detectable(self, alpha: float = 1 - CONFIDENCE, power: float = POWER) -> float:
        """Smallest ``|mu|`` a two-sided test at level ``alpha`` detects with ``power``.

        Solves ``P(|T| > t(1 - alpha/2, df)) = power`` for ``delta > 0`` with
        ``T ~ noncentral t(df, delta / se)`` (Card et al. 2020 on why a study reports this).
        NaN when there is no standard error.
        """
        _check_probability("alpha", alpha)
        _check_probability("power", power)
        if power <= alpha:
            raise ValueError(f"power ({power}) must exceed alpha ({alpha})")
        if not _has_t_reference(self):
            return math.nan
        from scipy import optimize
        from scipy import special
        from scipy import stats

        critical = float(special.stdtrit(self.df, 1.0 - alpha / 2.0))

        def shortfall(noncentrality: float) -> float:
            # The far tail (rejecting on the wrong side) underflows to NaN in scipy's noncentral
            # t for large noncentralities, where it is negligible: count it as 0 there.
            wrong_side = float(stats.nct.cdf(-critical, self.df, noncentrality))
            reject = float(stats.nct.sf(critical, self.df, noncentrality))
            return reject + (wrong_side if math.isfinite(wrong_side) else 0.0) - power

        # At noncentrality 0 the rejection rate is alpha < power; widen until it passes power.
        high = critical + 4.0
        while shortfall(high) < 0.0:
            high *= 2.0
        noncentrality = optimize.brentq(shortfall, 0.0, high, xtol=1e-12, rtol=1e-12)
        return float(noncentrality) * self.se


def seed_interval(deltas: Sequence[float]) -> Interval:
    """Paired t interval over seeds from the per-seed differences (candidate - baseline).

    Fewer than two seeds: se, df and p are NaN. Identical differences: the sign-flip case.

    Raises:
        ValueError: when ``deltas`` is not one-dimensional or holds a non-finite value.
    """
    values = np.asarray(deltas, dtype=float)
    if values.ndim != 1:
        raise ValueError(f"deltas must be one-dimensional, got shape {values.shape}")
    _check_finite(values, "deltas")
    n = int(values.size)
    estimate = float(values.mean()) if n else math.nan
    if n < 2:
        return Interval(estimate, math.nan, math.nan, "seeds", n, None, math.nan)
    sd = float(values.std(ddof=1))
    if _negligible(sd, estimate):
        return _sign_flip_interval(estimate, n, None)
    se = sd / math.sqrt(n)
    df = float(n - 1)
    return Interval(estimate, se, df, "seeds", n, None, _two_sided_p(estimate / se, df))


def crossed_interval(differences: np.ndarray) -> Interval:
    """Interval with seeds and test examples as crossed random factors.

    ``differences`` is shaped (n_seeds, n_examples). The variance of ``D`` is estimated by
    ``(MS_A + max(0, MS_B - MS_E)) / (n m)``: the seed-only variance plus the test-set term
    ``sigma_b^2 / m``, floored at 0 so this standard error is never below the seed-only one.
    Degrees of freedom by Satterthwaite. No spread at all: the sign-flip case on the per-seed
    means.

    Raises:
        ValueError: when ``differences`` is not 2-D with at least 2 seeds and 2 examples, or
            holds a non-finite value.
    """
    d = np.asarray(differences, dtype=float)
    if d.ndim != 2:
        raise ValueError(f"differences must be 2-D (n_seeds, n_examples), got shape {d.shape}")
    n, m = d.shape
    if n < 2 or m < 2:
        raise ValueError(f"differences need at least 2 seeds and 2 examples, got shape {d.shape}")
    _check_finite(d, "differences")
    ms_a, ms_b, ms_e = _mean_squares(d)
    seed_means = d.mean(axis=1)
    # The mean of the per-seed means equals the grand mean; taking it this way keeps the estimate
    # bit-identical to seed_interval on the same per-seed means.
    estimate = float(seed_means.mean())
    excess = max(0.0, ms_b - ms_e)
    se = math.sqrt((ms_a + excess) / (n * m))
    # se * sqrt(n) is the per-seed spread when the test-set term is 0: the same yardstick as
    # seed_interval's tie check.
    if _negligible(se * math.sqrt(n), estimate):
        return _sign_flip_interval(estimate, n, m)
    df = _satterthwaite_df(ms_a, ms_b, ms_e, n, m)
    if n < FEW_SEEDS:
        # Below 5 seeds Satterthwaite's df rises exactly when the seed mean square happens to
        # be small, and coverage fell to 0.92-0.93 at 3 seeds and 0.875 at 2 (simulated A/A
        # studies); the seed-only df keeps the interval conservative there.
        df = min(df, float(n - 1))
    p = _two_sided_p(estimate / se, df)
    return Interval(estimate, se, df, "seeds and examples", n, m, p)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order.

    Sorted ascending, the j-th adjusted p is ``max over i <= j of min(1, (k - i + 1) p(i))``.
    NaN stays NaN and does not count in ``k``.

    Raises:
        ValueError: when a p-value lies outside [0, 1].
    """
    p = np.asarray(p_values, dtype=float).reshape(-1)
    present = np.flatnonzero(~np.isnan(p))
    if np.any((p[present] < 0.0) | (p[present] > 1.0)):
        raise ValueError(f"p-values must lie in [0, 1], got {list(p_values)}")
    order = present[np.argsort(p[present], kind="stable")]
    k = order.size
    scaled = np.minimum(1.0, (k - np.arange(k)) * p[order])
    adjusted = np.full(p.shape, math.nan)
    # The running maximum keeps the adjusted p-values in the order of the raw ones.
    adjusted[order] = np.maximum.accumulate(scaled)
    return [float(value) for value in adjusted]


def _mean_squares(d: np.ndarray) -> tuple[float, float, float]:
    """Two-way ANOVA mean squares without replication: seeds (A), examples (B), residual (E)."""
    n, m = d.shape
    grand = d.mean()
    seed_means = d.mean(axis=1)
    example_means = d.mean(axis=0)
    ms_a = m * float(np.sum((seed_means - grand) ** 2)) / (n - 1)
    ms_b = n * float(np.sum((example_means - grand) ** 2)) / (m - 1)
    # The residual from its definition rather than as SS_total - SS_A - SS_B, which cancels
    # catastrophically when the residual is tiny; built in place, since this runs per study.
    residual = d - seed_means[:, None]
    residual -= example_means
    residual += grand
    ms_e = float(np.vdot(residual, residual)) / ((n - 1) * (m - 1))
    return ms_a, ms_b, ms_e


def _satterthwaite_df(ms_a: float, ms_b: float, ms_e: float, n: int, m: int) -> float:
    """Satterthwaite's degrees of freedom of ``MS_A + max(0, MS_B - MS_E)``.

    With ``B = MS_B - MS_E > 0`` this is the two-step formula (B's own df from its two mean
    squares, then the sum A + B) written as one: ``(MS_A + MS_B - MS_E)^2 /
    (MS_A^2/(n-1) + MS_B^2/(m-1) + MS_E^2/((n-1)(m-1)))``. With B floored at 0, just n - 1.
    """
    if ms_b <= ms_e:
        return float(n - 1)
    total = ms_a + ms_b - ms_e
    spread = ms_a**2 / (n - 1) + ms_b**2 / (m - 1) + ms_e**2 / ((n - 1) * (m - 1))
    return total**2 / spread


def _sign_flip_interval(estimate: float, n: int, n_examples: int | None) -> Interval:
    """All ``n`` per-seed differences equal ``estimate``: the exact sign-flip test.

    Of the 2^n sign assignments only "all as observed" and "all flipped" reach the observed
    ``|mean|``, so p = 2/2^n; with all differences 0 every assignment ties and p = 1.
    """
    zero = _negligible(abs(estimate), 0.0)
    p = 1.0 if zero else min(1.0, 2.0 * 0.5**n)
    return Interval(estimate, 0.0, float(n - 1), "sign-flip", n, n_examples, p)


def _two_sided_p(t: float, df: float) -> float:
    """Two-sided p of a t statistic; ``stdtr`` is scipy.stats.t.cdf without its overhead."""
    from scipy import special

    return float(2.0 * special.stdtr(df, -abs(t)))


def _has_t_reference(interval: Interval) -> bool:
    """True when the interval has a positive standard error and usable degrees of freedom."""
    return interval.se > 0.0 and interval.df > 0.0 and math.isfinite(interval.se)


def _negligible(spread: float, center: float) -> bool:
    """True when ``spread`` is rounding noise relative to ``center`` (or to 1 near 0)."""
    return spread <= _TIE_TOLERANCE * max(1.0, abs(center))


def _check_probability(name: str, value: float) -> None:
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {value}")


def _check_finite(values: np.ndarray, name: str) -> None:
    bad = int(np.count_nonzero(~np.isfinite(values)))
    if bad:
        raise ValueError(f"{name}: {bad} of {values.size} values are NaN or infinite")
