"""Verdicts on a study's declared claims, computed from a confirmation's evidence.

One claim, one verdict, by the rule in ``docs/results/README.md``:

* Δ = candidate − baseline on the claim's metric, paired by seed (and by test example where the
  runs left per-example scores: the interval then counts which examples form the test set as a
  second source of noise, :func:`~framework.reporting.intervals.crossed_interval`; otherwise
  over seeds only, :func:`~framework.reporting.intervals.seed_interval`);
* the p-values of a study's claims are adjusted together (Holm 1979), so that declaring more
  claims does not make one of them easier to "reproduce";
* a claim of an effect ("lower", "higher") is ``reproduced`` when the adjusted two-sided p is
  below 0.05 and Δ is on the claimed side, ``not reproduced`` when it is below 0.05 on the other
  side, and ``within noise`` otherwise, which is stated with the smallest effect the design
  could have detected at 80 % power;
* a claim of "no worse than by δ" (``margin``) is ``reproduced`` when the adjusted one-sided p of
  "Δ is at least δ worse" is below 0.05 (the 90 % interval lies on the good side of δ),
  ``not reproduced`` when Δ is worse than δ at that level, and ``within noise`` otherwise.

A claim whose baseline was chosen with fewer search trials than its candidate, or drops other
kinds of unit, carries a warning in its line. This module imports no torch and no Optuna.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
import math
from pathlib import Path

import numpy as np

from framework.config.claims import Claim
from framework.reporting.evidence import Evidence
from framework.reporting.evidence import Transcribed
from framework.reporting.intervals import POWER
from framework.reporting.intervals import Interval
from framework.reporting.intervals import crossed_interval
from framework.reporting.intervals import holm
from framework.reporting.intervals import seed_interval


LEVEL = 0.05
"""Family-wise error rate over a study's claims."""
REPRODUCED, NOT_REPRODUCED, WITHIN_NOISE = "reproduced", "not reproduced", "within noise"


@dataclass(frozen=True)
class Judged:
    """A claim with its resolved configurations, its numbers and its verdict."""

    claim: Claim
    candidate: str | None
    baseline: str | None
    candidate_mean: float = math.nan
    baseline_mean: float = math.nan
    interval: Interval | None = None
    """The interval the verdict rests on (seeds and examples where available)."""
    seeds_only: Interval | None = None
    """The t-interval over seeds, shown beside it."""
    p_value: float = math.nan
    """Two-sided p of Δ = 0, or one-sided p of "Δ at least δ worse" for a margin."""
    adjusted_p: float = math.nan
    verdict: str = WITHIN_NOISE
    problem: str = ""
    """Why there is no verdict from data (a configuration without complete runs)."""
    warnings: list[str] = field(default_factory=list)
    n_claims: int = 1

    def line(self) -> str:
        """``Claim <id>: <verdict> — <the numbers it rests on>.``"""
        head = f"Claim {self.claim.id}: {self.verdict} — "
        if self.interval is None:
            return head + f"no verdict from data: {self.problem}."
        i, unit = self.interval, _unit(self.interval)
        low, high = i.bounds()
        text = (f"{self.claim.metric} {self.candidate_mean:.4g} ({self.candidate}) against "
                f"{self.baseline_mean:.4g} ({self.baseline}), Δ {i.estimate:+.4g}, 95% CI "
                f"{_pair(low, high)} over {unit}")
        if self.seeds_only is not None and i.method != self.seeds_only.method:
            text += f" (seeds only {_pair(*self.seeds_only.bounds())})"
        if self.claim.margin is not None:
            worse = "+" if self.claim.direction == "lower" else "-"
            low90, high90 = i.bounds(0.90)
            text += (f"; 90% CI {_pair(low90, high90)} against the margin "
                     f"{worse}{self.claim.margin:g}, one-sided p = {self.p_value:.3g}")
        else:
            text += f"; p = {self.p_value:.3g}"
        if self.n_claims > 1:
            text += f", Holm-adjusted over {self.n_claims} claims {self.adjusted_p:.3g}"
        if self.verdict == WITHIN_NOISE:
            text += "; " + self._noise_statement()
        for warning in self.warnings:
            text += f"; warning: {warning}"
        return head + text + "."

    def _noise_statement(self) -> str:
        i = self.interval
        assert i is not None
        if self.claim.margin is None and i.p_value < LEVEL <= self.adjusted_p:
            lead = "the CI excludes 0, but not after Holm's adjustment; "
        else:
            lead = ""
        alpha = LEVEL / self.n_claims
        if not (i.se > 0 and math.isfinite(i.df)):
            return lead + (f"the differences have no spread, so no effect size can be "
                           f"excluded with {i.n_seeds} seeds")
        if self.claim.margin is not None:
            return lead + self._margin_power(alpha)
        return (lead + f"could not detect |Δ| < {i.detectable(alpha=alpha):.3g} at 80% power "
                f"({_unit(i)}, α = {alpha:.3g})")

    def _margin_power(self, alpha: float) -> str:
        """How far on the good side of the margin the true Δ must lie for this design to show
        "no worse" with 80 % power (one-sided t test at ``alpha``; the normal-shift
        approximation of the power, t(1 - α) + t(0.8), in standard errors)."""
        from scipy import stats

        i, margin = self.interval, self.claim.margin
        assert i is not None and margin is not None
        distance = (float(stats.t.ppf(1 - alpha, i.df)) + float(stats.t.ppf(POWER, i.df))) * i.se
        if self.claim.direction == "lower":
            bound = f"below {margin - distance:+.3g}"
        else:
            bound = f"above {-margin + distance:+.3g}"
        return (f"could show it with 80% power only for a true Δ {bound} "
                f"({_unit(i)}, α = {alpha:.3g})")


def judge(evidence: Evidence) -> list[Judged]:
    """Every declared claim of ``evidence`` with its verdict, in the order declared."""
    measured = [_measure(evidence, claim) for claim in evidence.claims]
    adjusted = iter(holm([m.p_value for m in measured if m.interval is not None]))
    out = []
    for m in measured:
        if m.interval is None:
            out.append(_with(m, n_claims=len(measured)))
            continue
        p = next(adjusted)
        out.append(_with(m, adjusted_p=p, verdict=_verdict(m, p), n_claims=len(measured)))
    return out


def page_verdict(judged: list[Judged]) -> str:
    """The page's last line: ``reproduced`` when every claim is, ``not reproduced`` when any
    claim is, ``within noise`` otherwise (a paper's claim is the conjunction of its parts)."""
    words = [j.verdict for j in judged]
    if words and all(w == REPRODUCED for w in words):
        word = REPRODUCED
    elif NOT_REPRODUCED in words:
        word = NOT_REPRODUCED
    else:
        word = WITHIN_NOISE
    parts = "; ".join(f"{j.claim.id} {j.verdict}" for j in judged) or "no claims declared"
    return f"Verdict: {word} — {parts}."


def resolve(evidence: Evidence, name: str) -> str | None:
    """The configuration a claim's ``candidate`` or ``baseline`` names: a label as it is; an
    arm, the row the comparison table gives it (its best confirmed configuration by the mean
    of the first objective, a validation metric, so the choice sees no test data; for the
    baseline arm, the confirmation's baseline)."""
    from framework.reporting.comparison import build

    if evidence.configuration(name) is not None:
        return name
    if not any(c.arm == name for c in evidence.configurations):
        return None
    rows = build(evidence, per_arm=True).rows
    return next((row.label for row in rows if row.arm == name and not row.note), None)


def _measure(evidence: Evidence, claim: Claim) -> Judged:
    if claim.id in evidence.transcribed:
        return _transcribed(claim, evidence.transcribed[claim.id])
    candidate, baseline = resolve(evidence, claim.candidate), resolve(evidence, claim.baseline)
    judged = Judged(claim, candidate, baseline)
    if candidate is None or baseline is None:
        missing = claim.candidate if candidate is None else claim.baseline
        return _with(judged, problem=f"the confirmation has no configuration {missing!r}")
    cand = evidence.per_example(candidate, claim.metric)
    base = evidence.per_example(baseline, claim.metric)
    if cand is not None and base is not None and cand.shape == base.shape:
        differences = cand - base
        interval = crossed_interval(differences)
        seeds_only = seed_interval(differences.mean(axis=1).tolist())
        means = float(cand.mean()), float(base.mean())
    else:
        by_seed = [evidence.values.get(label, {}).get(claim.metric, {})
                   for label in (candidate, baseline)]
        shared = sorted(set(by_seed[0]) & set(by_seed[1]))
        if len(shared) < 2:
            return _with(judged, problem=f"{len(shared)} seed(s) with both {candidate!r} and "
                         f"{baseline!r} scored on {claim.metric}; at least 2 are needed")
        interval = seeds_only = seed_interval([by_seed[0][s] - by_seed[1][s] for s in shared])
        means = (float(np.mean([by_seed[0][s] for s in shared])),
                 float(np.mean([by_seed[1][s] for s in shared])))
    return _with(judged, candidate_mean=means[0], baseline_mean=means[1], interval=interval,
                 seeds_only=seeds_only, p_value=_p_value(claim, interval),
                 warnings=_fairness(evidence, candidate, baseline))


def _transcribed(claim: Claim, numbers: Transcribed) -> Judged:
    """A claim judged from a table's numbers: a paired t-interval's standard error is its
    half-width over t(0.975, n - 1); two unpaired means with their standard errors give
    Welch's interval."""
    from scipy import stats

    how = "seeds only"
    if numbers.ci is not None:
        df = float(numbers.n_seeds - 1)
        low, high = numbers.ci
        se = (high - low) / 2 / float(stats.t.ppf(0.975, df))
        if se == 0:  # every paired difference was equal: the exact sign-flip test
            interval = seed_interval([numbers.estimate] * numbers.n_seeds)
            return _transcribed_judged(claim, numbers, interval, how)
    else:
        how = "seeds only, unpaired (Welch)"
        if numbers.candidate_se is None or numbers.baseline_se is None:
            raise ValueError(f"transcribed claim {claim.id!r} needs `ci`, or both standard "
                             "errors")
        n_base = numbers.n_baseline or numbers.n_seeds
        va, vb = numbers.candidate_se ** 2, numbers.baseline_se ** 2
        se = math.sqrt(va + vb)
        df = (va + vb) ** 2 / (va ** 2 / (numbers.n_seeds - 1) + vb ** 2 / (n_base - 1))
    p = float(2 * stats.t.sf(abs(numbers.estimate) / se, df)) if se > 0 else math.nan
    interval = Interval(numbers.estimate, se, df, "seeds", numbers.n_seeds, None, p)
    return _transcribed_judged(claim, numbers, interval, how)


def _transcribed_judged(claim: Claim, numbers: Transcribed, interval: Interval,
                        how: str) -> Judged:
    return Judged(claim, claim.candidate, claim.baseline, numbers.candidate_mean,
                  numbers.baseline_mean, interval, interval, _p_value(claim, interval),
                  warnings=[f"transcribed from {numbers.source}, {how}, pending the re-run "
                            "under this protocol"])


def _p_value(claim: Claim, interval: Interval) -> float:
    if claim.margin is None:
        return interval.p_value
    # H0: the candidate is worse than the baseline by at least the margin.
    if claim.direction == "lower":
        return interval.p_beyond(claim.margin, "below")
    return interval.p_beyond(-claim.margin, "above")


def _verdict(judged: Judged, adjusted_p: float) -> str:
    claim, interval = judged.claim, judged.interval
    assert interval is not None
    if claim.margin is not None:
        if adjusted_p < LEVEL:
            return REPRODUCED
        if not math.isfinite(adjusted_p):
            return WITHIN_NOISE
        # Worse than the margin, at the same level: the opposite of "no worse".
        if claim.direction == "lower":
            worse = interval.p_beyond(claim.margin, "above")
        else:
            worse = interval.p_beyond(-claim.margin, "below")
        # Bonferroni over the claims: the conservative side of Holm's adjustment.
        return NOT_REPRODUCED if worse * judged.n_claims < LEVEL else WITHIN_NOISE
    if not adjusted_p < LEVEL:  # NaN (nothing to test against) is no evidence either
        return WITHIN_NOISE
    on_claimed_side = interval.estimate < 0 if claim.direction == "lower" else (
        interval.estimate > 0)
    return REPRODUCED if on_claimed_side else NOT_REPRODUCED


def _fairness(evidence: Evidence, candidate: str, baseline: str) -> list[str]:
    """What makes the comparison not like for like."""
    cand, base = evidence.configuration(candidate), evidence.configuration(baseline)
    if cand is None or base is None:
        return []
    warnings = []
    if base.chosen.trials < cand.chosen.trials:
        how = (f"chosen with {base.chosen.trials} search trials" if base.chosen.searched
               else "not searched")
        warnings.append(f"the baseline was {how}, the candidate chosen with "
                        f"{cand.chosen.trials}")
    if base.drops and set(base.drops) != set(cand.drops):
        warnings.append(f"the baseline drops {_listed(base.drops)}, the candidate "
                        f"{_listed(cand.drops) or 'nothing'}")
    return warnings


def _listed(items: tuple[str, ...]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return " and ".join(filter(None, [", ".join(items[:-1]), *items[-1:]]))


def _unit(interval: Interval) -> str:
    seeds = f"{interval.n_seeds} seeds"
    if interval.n_examples:
        return f"{seeds} x {interval.n_examples} test examples"
    return seeds


def _pair(low: float, high: float) -> str:
    if math.isnan(low) or math.isnan(high):
        return "[undefined: no spread]"
    return f"[{low:+.4g}, {high:+.4g}]"


def _with(judged: Judged, **changes: object) -> Judged:
    return replace(judged, **changes)


def to_markdown(evidence: Evidence) -> str:
    """What a results page ends with: the confirmation table, one verdict line per claim and
    the page's verdict line, all computed from ``evidence`` (``dropout-lab verdict`` prints
    it; a page whose end differs from it was edited by hand)."""
    from framework.reporting.comparison import build
    from framework.reporting.comparison import to_markdown as table_markdown

    # A transcribed page keeps its earlier tables in its prose.
    table = table_markdown(build(evidence)) if evidence.configurations else ""
    lines = claim_lines(evidence)
    return table + ("\n" if table and lines else "") + lines


def claim_lines(evidence: Evidence) -> str:
    """One verdict line per declared claim, each a paragraph, then the page's verdict line;
    empty for a study that declares no claims (it has no verdict to give)."""
    judged = judge(evidence)
    if not judged:
        return ""
    return "".join(f"{item.line()}\n\n" for item in judged) + page_verdict(judged) + "\n"


def derive(folder: Path) -> str:
    """What a results page whose evidence is ``folder`` ends with: a study's claims (a folder
    written by ``confirm --export``) or the benchmarks' targets (a folder with
    ``targets.json``)."""
    from framework.reporting import targets
    from framework.reporting.evidence import load

    if targets.is_targets(folder):
        return targets.to_markdown(folder)
    return to_markdown(load(folder))
