"""The statistics behind a verdict: Holm, coverage of A/A studies, power, ties and consistency.

The simulations follow the model d[s, i] = mu + a_s + b_i + e_si (seed, test example, residual)
in the variance regimes a dropout study meets; each uses a fixed seed, so every run is the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
import math
import zlib

import numpy as np
import pytest
from scipy import stats

from framework.reporting.intervals import CONFIDENCE
from framework.reporting.intervals import Interval
from framework.reporting.intervals import crossed_interval
from framework.reporting.intervals import holm
from framework.reporting.intervals import seed_interval


STUDIES = 2000  # per coverage regime: the 93-97 % band is about +-4 standard errors
POWER_STUDIES = 2000  # per power check: 0.75-0.85 is about +-5 standard errors
BATCH = 250  # studies drawn at once: bulk draws, bounded memory at 10 x 872


@dataclass(frozen=True)
class Regime:
    """Standard deviations of the seed, test-example and residual terms of one simulation."""

    name: str
    sigma_a: float
    sigma_b: float
    sigma_e: float
    correctness: bool = False
    """Residuals are differences of 0/1 correctness (per-example accuracy ~ Beta(9, 1))."""
    studies: int = STUDIES


SEEDS_DOMINATE = Regime("seeds dominate", sigma_a=0.02, sigma_b=0.005, sigma_e=0.05)
TEST_SET_DOMINATES = Regime("test set dominates", sigma_a=0.001, sigma_b=0.08, sigma_e=0.05)
RESIDUAL_DOMINATES = Regime("residual dominates", sigma_a=0.005, sigma_b=0.01, sigma_e=0.3)
# Seed and test-set terms of the same size: the hardest case for Satterthwaite's df. Its coverage
# at n = 5 is about 0.94 (measured over 20,000 studies: the estimated df grows when MS_A happens to
# be small, narrowing the interval just then), so it gets more studies: at 2,000 the sampling noise
# alone would put it below 0.93 one time in twenty.
BALANCED = Regime(
    "seeds and test set balanced", sigma_a=0.003, sigma_b=0.02, sigma_e=0.05, studies=5000
)
CORRECTNESS = Regime(
    "0/1 correctness", sigma_a=0.0, sigma_b=0.0, sigma_e=math.nan, correctness=True
)

# The seed-only interval conditions on the test set, so its regimes hold the test set fixed.
SEED_REGIMES = [SEEDS_DOMINATE, RESIDUAL_DOMINATES, CORRECTNESS]
CROSSED_REGIMES = [SEEDS_DOMINATE, TEST_SET_DOMINATES, RESIDUAL_DOMINATES, BALANCED, CORRECTNESS]
N_SEEDS = [5, 10]
N_EXAMPLES = [360, 872]  # the digits and SST-2 test-set sizes


def _matrices(
    rng: np.random.Generator, regime: Regime, n: int, m: int, studies: int, mu: float = 0.0
) -> Iterator[np.ndarray]:
    """Yield ``studies`` difference matrices (n, m), each with fresh seed and example effects."""
    for start in range(0, studies, BATCH):
        k = min(BATCH, studies - start)
        shape = (k, n, m)
        if regime.correctness:
            accuracy = rng.beta(9.0, 1.0, size=(k, 1, m))
            candidate = rng.random(shape) < accuracy
            baseline = rng.random(shape) < accuracy
            residual = candidate.astype(float) - baseline.astype(float)
        else:
            residual = rng.normal(0.0, regime.sigma_e, size=shape)
        seeds = rng.normal(0.0, regime.sigma_a, size=(k, n, 1))
        examples = rng.normal(0.0, regime.sigma_b, size=(k, 1, m))
        yield from mu + seeds + examples + residual


def _seed_means(
    rng: np.random.Generator, regime: Regime, n: int, m: int, studies: int, mu: float = 0.0
) -> np.ndarray:
    """Per-seed mean differences (studies, n) with the test set held fixed.

    A fixed test set adds its mean effect b-bar to every seed; centring it makes the A/A target 0,
    so for Gaussian residuals d-bar_s = mu + a_s + e-bar_s with e-bar_s ~ N(0, sigma_e^2 / m).
    """
    if regime.correctness:
        return np.stack([d.mean(axis=1) for d in _matrices(rng, regime, n, m, studies, mu)])
    seeds = rng.normal(0.0, regime.sigma_a, size=(studies, n))
    residual = rng.normal(0.0, regime.sigma_e / math.sqrt(m), size=(studies, n))
    return mu + seeds + residual


def _covers_zero(interval: Interval) -> bool:
    low, high = interval.bounds()
    return low <= 0.0 <= high


def _rng(*key: int | str) -> np.random.Generator:
    """A generator seeded from the test's parameters: fixed, and independent across them."""
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


# --- Holm ----------------------------------------------------------------------------------------


def test_holm_matches_the_textbook_example() -> None:
    adjusted = holm([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert [p < 0.05 for p in adjusted] == [True, False, False, True]


def test_holm_leaves_nan_out_of_the_count_and_caps_at_one() -> None:
    adjusted = holm([0.01, math.nan, 0.04])
    assert adjusted[0] == pytest.approx(0.02)
    assert math.isnan(adjusted[1])
    assert adjusted[2] == pytest.approx(0.04)
    assert holm([0.6, 0.7]) == [1.0, 1.0]
    assert holm([]) == []
    with pytest.raises(ValueError, match="p-values"):
        holm([0.5, 1.5])


# --- Coverage of A/A studies ---------------------------------------------------------------------


COVERAGE_CASES = [("seeds", regime) for regime in SEED_REGIMES] + [
    ("crossed", regime) for regime in CROSSED_REGIMES]
"""The seed-only interval conditions on the test set (simulated with it fixed); the crossed one
draws a fresh test set per study."""


@pytest.mark.parametrize(("method", "regime"), COVERAGE_CASES,
                         ids=[f"{method}-{regime.name}" for method, regime in COVERAGE_CASES])
@pytest.mark.parametrize("n_examples", N_EXAMPLES)
@pytest.mark.parametrize("n_seeds", N_SEEDS)
def test_the_interval_covers_zero_in_aa_studies(
    method: str, regime: Regime, n_seeds: int, n_examples: int
) -> None:
    rng = _rng(method, regime.name, n_seeds, n_examples)
    if method == "seeds":
        means = _seed_means(rng, regime, n_seeds, n_examples, regime.studies)
        intervals = (seed_interval(row) for row in means)
    else:
        studies = _matrices(rng, regime, n_seeds, n_examples, regime.studies)
        intervals = (crossed_interval(d) for d in studies)
    coverage = np.mean([_covers_zero(interval) for interval in intervals])
    print(f"\ncoverage {method} n={n_seeds} m={n_examples} {regime.name}: {coverage:.4f}")
    assert 0.93 <= coverage <= 0.97


@pytest.mark.parametrize("n_seeds", [2, 3, 4])
def test_below_five_seeds_the_crossed_interval_errs_on_the_wide_side(n_seeds: int) -> None:
    # Satterthwaite's df alone covered 0.875 at 2 seeds and 0.92-0.93 at 3 in this regime.
    rng = _rng("few seeds", n_seeds)
    studies = _matrices(rng, BALANCED, n_seeds, 360, STUDIES)
    coverage = np.mean([_covers_zero(crossed_interval(d)) for d in studies])
    assert coverage >= 0.94


# --- Power ---------------------------------------------------------------------------------------


def _true_seed_interval(regime: Regime, n: int, m: int) -> Interval:
    """The seed-only reference with the true standard error, Var = (s_a^2 + s_e^2 / m) / n."""
    se = math.sqrt((regime.sigma_a**2 + regime.sigma_e**2 / m) / n)
    return Interval(0.0, se, n - 1, "seeds", n, None, math.nan)


def _true_crossed_interval(regime: Regime, n: int, m: int) -> Interval:
    """The crossed reference: true Var(D), Satterthwaite's df from the expected mean squares."""
    a, b, e = regime.sigma_a**2, regime.sigma_b**2, regime.sigma_e**2
    se = math.sqrt(a / n + b / m + e / (n * m))
    ms_a, ms_b, ms_e = m * a + e, n * b + e, e
    df = (ms_a + ms_b - ms_e) ** 2 / (
        ms_a**2 / (n - 1) + ms_b**2 / (m - 1) + ms_e**2 / ((n - 1) * (m - 1))
    )
    return Interval(0.0, se, df, "seeds and examples", n, m, math.nan)


@pytest.mark.parametrize("n_seeds", N_SEEDS)
def test_seed_interval_detects_the_detectable_effect_with_the_planned_power(n_seeds: int) -> None:
    m = 360
    planted = _true_seed_interval(SEEDS_DOMINATE, n_seeds, m).detectable()
    means = _seed_means(_rng("power", n_seeds), SEEDS_DOMINATE, n_seeds, m, POWER_STUDIES, planted)
    power = np.mean([seed_interval(row).p_value < 0.05 for row in means])
    print(f"\npower seeds n={n_seeds} m={m}: mu={planted:.5f} rejects {power:.4f}")
    assert 0.75 <= power <= 0.85


def test_crossed_interval_detects_the_detectable_effect_with_the_planned_power() -> None:
    n, m = 5, 360
    planted = _true_crossed_interval(BALANCED, n, m).detectable()
    studies = _matrices(_rng("power crossed"), BALANCED, n, m, POWER_STUDIES, planted)
    power = np.mean([crossed_interval(d).p_value < 0.05 for d in studies])
    print(f"\npower crossed n={n} m={m} {BALANCED.name}: mu={planted:.5f} rejects {power:.4f}")
    assert 0.75 <= power <= 0.85


def test_detectable_approaches_the_normal_formula_and_grows_with_power() -> None:
    wide = Interval(0.0, 0.01, 1e7, "seeds", 5, None, math.nan)
    normal = (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * 0.01
    assert wide.detectable() == pytest.approx(normal, rel=1e-4)
    few = Interval(0.0, 0.01, 4.0, "seeds", 5, None, math.nan)
    assert few.detectable(power=0.5) < few.detectable() < few.detectable(power=0.9)
    assert few.detectable() > wide.detectable()
    assert math.isnan(seed_interval([0.1] * 5).detectable())
    assert math.isnan(seed_interval([0.1]).detectable())


# --- Ties: the sign-flip case --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("deltas", "p"), [([0.1] * 5, 2 / 32), ([0.1] * 3, 0.25), ([0.0] * 5, 1.0)]
)
def test_identical_seed_differences_use_the_exact_sign_flip_test(
    deltas: list[float], p: float
) -> None:
    interval = seed_interval(deltas)
    assert interval.method == "sign-flip"
    assert interval.se == 0.0
    assert interval.df == len(deltas) - 1
    assert interval.p_value == pytest.approx(p)
    assert interval.p_value > 0.0
    assert all(math.isnan(bound) for bound in interval.bounds())


def test_sign_flip_p_matches_scipy_permutation_test() -> None:
    values = np.full(5, 0.3)
    exact = stats.permutation_test(
        (values,), np.mean, permutation_type="samples", alternative="two-sided"
    )
    assert seed_interval(values).p_value == pytest.approx(exact.pvalue)


def test_sign_flip_one_sided_p_depends_on_the_side_of_the_margin() -> None:
    interval = seed_interval([0.3] * 5)
    assert interval.p_beyond(0.5, "below") == pytest.approx(1 / 32)
    assert interval.p_beyond(0.2, "below") == 1.0
    assert interval.p_beyond(0.2, "above") == pytest.approx(1 / 32)
    assert interval.p_beyond(0.3, "above") == 1.0


def test_constant_crossed_matrix_is_the_sign_flip_case() -> None:
    interval = crossed_interval(np.full((5, 360), 0.1))
    assert interval.method == "sign-flip"
    assert interval.n_examples == 360
    assert interval.p_value == pytest.approx(2 / 32)
    assert all(math.isnan(bound) for bound in interval.bounds())
    assert crossed_interval(np.zeros((4, 10))).p_value == 1.0


def test_one_seed_has_no_interval() -> None:
    interval = seed_interval([0.2])
    assert interval.estimate == 0.2
    assert math.isnan(interval.se) and math.isnan(interval.df) and math.isnan(interval.p_value)
    assert all(math.isnan(bound) for bound in interval.bounds())
    assert math.isnan(interval.p_beyond(0.1, "below"))


# --- Consistency of p-values and intervals -------------------------------------------------------


def _random_cases() -> Iterator[tuple[str, np.ndarray]]:
    """Centred random data (seed vectors and crossed matrices) of varied sizes."""
    rng = np.random.default_rng(7)
    for _ in range(150):
        n = int(rng.integers(2, 12))
        deltas = rng.normal(0.0, rng.uniform(0.001, 1.0), size=n)
        yield "seeds", deltas - deltas.mean()
        m = int(rng.integers(2, 40))
        regime = (rng.uniform(0, 0.05), rng.uniform(0, 0.05), rng.uniform(0.001, 0.3))
        d = (
            rng.normal(0.0, regime[0], size=(n, 1))
            + rng.normal(0.0, regime[1], size=(1, m))
            + rng.normal(0.0, regime[2], size=(n, m))
        )
        yield "crossed", d - d.mean()


def _interval(kind: str, data: np.ndarray) -> Interval:
    return seed_interval(data) if kind == "seeds" else crossed_interval(data)


def test_interval_excludes_zero_exactly_when_p_is_below_alpha() -> None:
    rng = np.random.default_rng(11)
    outcomes = set()
    for kind, centred in _random_cases():
        reference = _interval(kind, centred)
        critical = stats.t.ppf(0.975, reference.df)
        # Shifts spread around the rejection boundary, and a hair either side of it.
        for k in (*rng.uniform(0.3, 2.0, size=3), 1 - 1e-6, 1 + 1e-6):
            interval = _interval(kind, centred + k * critical * reference.se)
            low, high = interval.bounds(0.95)
            excludes = low > 0.0 or high < 0.0
            assert excludes == (interval.p_value < 0.05), (kind, k, interval)
            outcomes.add(excludes)
    assert outcomes == {True, False}


def test_one_sided_p_agrees_with_the_90_percent_interval() -> None:
    rng = np.random.default_rng(12)
    outcomes = set()
    for kind, centred in _random_cases():
        interval = _interval(kind, centred + rng.normal(0.0, 0.05))
        low, high = interval.bounds(0.90)
        critical = stats.t.ppf(0.95, interval.df)
        for k in (*rng.uniform(-2.0, 2.0, size=3), 1 - 1e-6, 1 + 1e-6):
            margin = interval.estimate + k * critical * interval.se
            below = interval.p_beyond(margin, "below")
            assert (high < margin) == (below < 0.05), (kind, k, interval)
            mirrored = interval.estimate - k * critical * interval.se
            above = interval.p_beyond(mirrored, "above")
            assert (low > mirrored) == (above < 0.05), (kind, k, interval)
            outcomes.add(high < margin)
    assert outcomes == {True, False}


def test_seed_interval_matches_scipy_t_test() -> None:
    deltas = np.array([0.012, -0.004, 0.021, 0.008, 0.015])
    interval = seed_interval(deltas)
    reference = stats.ttest_1samp(deltas, 0.0)
    assert interval.p_value == pytest.approx(reference.pvalue)
    low, high = reference.confidence_interval(0.95)
    assert interval.bounds() == pytest.approx((low, high))
    assert interval.p_beyond(0.0, "above") == pytest.approx(
        stats.ttest_1samp(deltas, 0.0, alternative="greater").pvalue
    )


def test_crossed_interval_matches_a_direct_anova_and_two_step_satterthwaite() -> None:
    rng = np.random.default_rng(13)
    n, m = 6, 50
    d = rng.normal(0, 0.02, (n, 1)) + rng.normal(0, 0.05, (1, m)) + rng.normal(0, 0.1, (n, m))
    # Sums of squares by the textbook decomposition: total = seeds + examples + residual.
    grand = d.mean()
    ss_a = m * np.sum((d.mean(axis=1) - grand) ** 2)
    ss_b = n * np.sum((d.mean(axis=0) - grand) ** 2)
    ss_e = np.sum((d - grand) ** 2) - ss_a - ss_b
    ms_a, ms_b, ms_e = ss_a / (n - 1), ss_b / (m - 1), ss_e / ((n - 1) * (m - 1))
    assert ms_b > ms_e  # the case where the test-set term enters
    a, b = ms_a / (n * m), (ms_b - ms_e) / (n * m)
    df_b = (ms_b - ms_e) ** 2 / (ms_b**2 / (m - 1) + ms_e**2 / ((n - 1) * (m - 1)))
    df = (a + b) ** 2 / (a**2 / (n - 1) + b**2 / df_b)
    interval = crossed_interval(d)
    assert interval.method == "seeds and examples"
    assert (interval.n_seeds, interval.n_examples) == (n, m)
    assert interval.estimate == pytest.approx(grand)
    assert interval.se == pytest.approx(math.sqrt(a + b))
    assert interval.df == pytest.approx(df)
    assert interval.p_value == pytest.approx(2 * stats.t.sf(abs(grand) / math.sqrt(a + b), df))


# --- Crossed against seed-only -------------------------------------------------------------------


def test_crossed_equals_seed_only_without_example_or_residual_terms() -> None:
    seeds = np.random.default_rng(14).normal(0.01, 0.02, size=5)
    d = np.repeat(seeds[:, None], 360, axis=1)
    crossed, seed_only = crossed_interval(d), seed_interval(d.mean(axis=1))
    assert crossed.estimate == seed_only.estimate
    assert crossed.se == pytest.approx(seed_only.se, rel=1e-9)
    assert crossed.df == pytest.approx(seed_only.df, rel=1e-9)
    assert crossed.p_value == pytest.approx(seed_only.p_value, rel=1e-6)


def test_crossed_standard_error_is_never_below_the_seed_only_one() -> None:
    for kind, data in _random_cases():
        if kind == "crossed":
            crossed, seed_only = crossed_interval(data), seed_interval(data.mean(axis=1))
            assert crossed.se >= seed_only.se * (1 - 1e-12)


# --- Determinism and validation ------------------------------------------------------------------


def test_same_input_gives_the_same_outputs() -> None:
    d = np.random.default_rng(15).normal(0.01, 0.1, size=(5, 40))
    for compute in (crossed_interval, lambda x: seed_interval(x.mean(axis=1))):
        first, second = compute(d), compute(d)
        assert first == second
        assert first.bounds() == second.bounds()
        assert first.detectable() == second.detectable()


@pytest.mark.parametrize(
    "shape", [(10,), (1, 10), (5, 1), (2, 3, 4)], ids=["1-D", "one seed", "one example", "3-D"]
)
def test_crossed_interval_rejects_bad_shapes(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="differences"):
        crossed_interval(np.zeros(shape))


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="one-dimensional"):
        seed_interval(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        seed_interval([0.1, math.nan, 0.2])
    with pytest.raises(ValueError, match="NaN"):
        crossed_interval(np.array([[0.1, 0.2], [math.inf, 0.0]]))
    interval = seed_interval([0.1, 0.2, 0.4])
    with pytest.raises(ValueError, match="side"):
        interval.p_beyond(0.0, "sideways")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="confidence"):
        interval.bounds(1.5)
    assert CONFIDENCE == 0.95
