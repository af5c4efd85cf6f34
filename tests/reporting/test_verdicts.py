"""Verdicts from evidence: the rule of docs/results/README.md, applied by the tool."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from framework.config.claims import Claim
from framework.reporting.evidence import Choice
from framework.reporting.evidence import ConfigurationRecord
from framework.reporting.evidence import Evidence
from framework.reporting.evidence import Transcribed
from framework.reporting.evidence import load
from framework.reporting.evidence import save
from framework.reporting.verdicts import judge
from framework.reporting.verdicts import page_verdict
from framework.reporting.verdicts import resolve
from framework.reporting.verdicts import to_markdown


SEEDS = [1000, 1001, 1002, 1003, 1004]
SEARCHED = Choice(("dropout.0.p",), 8, "tpe")


def claim(**changes: object) -> Claim:
    fields = {"id": "c", "text": "The candidate has a lower test loss.", "candidate": "top1",
              "metric": "test_loss", "direction": "lower", **changes}
    return Claim(**fields)


def evidence(effect: float, claims: list[Claim], m: int = 400, seed: int = 0,
             noise: float = 0.3) -> Evidence:
    """Two configurations, five seeds, ``m`` test examples each; the candidate's per-example
    loss is the baseline's plus ``effect`` plus seed and example noise."""
    rng = np.random.default_rng(seed)
    example = rng.normal(1.0, 0.5, m)  # how hard each test example is, shared by both
    ev = Evidence("toy", SEEDS, "baseline", [("val_loss", "minimize"), ("test_loss", "minimize")],
                  [ConfigurationRecord("top1", chosen=SEARCHED, drops=("hidden",)),
                   ConfigurationRecord("baseline", chosen=SEARCHED, drops=("hidden",))],
                  claims)
    for label, shift in (("top1", effect), ("baseline", 0.0)):
        for seed in SEEDS:
            scores = example + shift + rng.normal(0, 0.02) + rng.normal(0, noise, m)
            ev.examples[(label, seed)] = {"test_loss": scores}
            ev.values.setdefault(label, {}).setdefault("test_loss", {})[seed] = scores.mean()
            ev.values[label].setdefault("val_loss", {})[seed] = scores.mean() + 0.1
    return ev


@pytest.mark.parametrize(("effect", "word"), [(-0.2, "reproduced"), (0.2, "not reproduced"),
                                              (0.0, "within noise")])
def test_the_verdict_follows_the_interval_and_the_claimed_side(effect: float, word: str) -> None:
    (judged,) = judge(evidence(effect, [claim()]))
    assert judged.verdict == word
    assert judged.interval is not None and judged.interval.method == "seeds and examples"
    assert judged.line().startswith(f"Claim c: {word} — test_loss ")


def test_within_noise_says_what_the_design_could_have_detected() -> None:
    (judged,) = judge(evidence(0.0, [claim()]))
    assert "could not detect |Δ| < " in judged.line()
    detectable = judged.interval.detectable()
    assert 0 < detectable < 1  # of the order of the noise of the mean, not a placeholder
    # A planted effect twice that size is found.
    (found,) = judge(evidence(-2 * detectable, [claim()], seed=1))
    assert found.verdict == "reproduced"


def transcribed(p_value: float, claim_id: str) -> Transcribed:
    """A paired difference over 10 seeds whose two-sided p is ``p_value``."""
    df, estimate = 9, -0.01
    se = abs(estimate) / stats.t.isf(p_value / 2, df)
    half = stats.t.ppf(0.975, df) * se
    return Transcribed(10, estimate, (estimate - half, estimate + half), 0.99, 1.0,
                       f"a table, row {claim_id}")


def test_holm_adjusts_the_claims_of_a_study_together() -> None:
    claims = [claim(id=name, candidate=name) for name in ("a", "b", "c", "d")]
    ev = Evidence("toy", [], None, [], [], claims, transcribed={
        name: transcribed(p, name) for name, p in zip("abcd", (0.01, 0.04, 0.03, 0.005),
                                                      strict=True)})
    judged = judge(ev)
    adjusted = [j.adjusted_p for j in judged]
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02], rel=1e-6)
    assert [j.verdict for j in judged] == ["reproduced", "within noise", "within noise",
                                           "reproduced"]
    assert "the CI excludes 0, but not after Holm's adjustment" in judged[1].line()
    assert page_verdict(judged).startswith("Verdict: within noise — a reproduced; b within")


@pytest.mark.parametrize(("effect", "word"), [(0.02, "reproduced"), (0.4, "not reproduced")])
def test_a_no_worse_than_claim_is_judged_against_its_margin(effect: float, word: str) -> None:
    (judged,) = judge(evidence(effect, [claim(margin=0.1)], noise=0.05))
    assert judged.verdict == word
    assert "against the margin +0.1, one-sided p = " in judged.line()


def test_a_baseline_chosen_with_less_search_or_other_units_is_warned_about() -> None:
    ev = evidence(-0.2, [claim()])
    ev.configurations[1] = ConfigurationRecord("baseline", chosen=Choice(), drops=("output",))
    (judged,) = judge(ev)
    assert "warning: the baseline was not searched, the candidate chosen with 8" in judged.line()
    assert "warning: the baseline drops output, the candidate hidden" in judged.line()
    ev.configurations[1] = ConfigurationRecord("baseline", chosen=SEARCHED,
                                               drops=("embedding", "hidden", "output"))
    (judged,) = judge(ev)
    assert "the baseline drops embedding, hidden and output, the candidate hidden" in (
        judged.line())


def test_identical_discrete_differences_give_no_zero_width_interval() -> None:
    ev = evidence(0.0, [claim(metric="test_error")])
    for label, step in (("top1", 0.02), ("baseline", 0.03)):
        ev.values[label]["test_error"] = dict.fromkeys(SEEDS, step)
    (judged,) = judge(ev)
    assert judged.interval.method == "sign-flip"
    assert judged.interval.p_value == pytest.approx(2 / 2**5)
    assert "[undefined: no spread]" in judged.line() and "p = 0.0625" in judged.line()


def test_an_arm_is_its_best_configuration_by_the_first_objective() -> None:
    ev = evidence(0.0, [])
    ev.configurations = [ConfigurationRecord("a/top1", arm="a"),
                         ConfigurationRecord("a/top2", arm="a"),
                         ConfigurationRecord("b/top1", arm="b")]
    ev.values = {"a/top1": {"val_loss": {1: 2.0}}, "a/top2": {"val_loss": {1: 1.5}},
                 "b/top1": {"val_loss": {1: 3.0}}}
    ev.baseline = "b/top1"
    assert (resolve(ev, "a"), resolve(ev, "b"), resolve(ev, "a/top1")) == (
        "a/top2", "b/top1", "a/top1")
    assert resolve(ev, "c") is None


def test_page_verdict_is_the_conjunction_of_the_claims() -> None:
    def of(*words: str) -> str:
        judged = judge(Evidence("toy", [], None, [], [], [
            claim(id=f"k{i}", candidate=f"top{i + 1}") for i in range(len(words))]))
        return page_verdict([j.__class__(**{**j.__dict__, "verdict": w})
                             for j, w in zip(judged, words, strict=True)])

    assert of("reproduced", "reproduced").startswith("Verdict: reproduced — ")
    assert of("reproduced", "within noise").startswith("Verdict: within noise — ")
    assert of("within noise", "not reproduced").startswith("Verdict: not reproduced — ")


def test_the_exported_files_give_the_same_page(tmp_path: Path) -> None:
    ev = evidence(-0.1, [claim(), claim(id="d", margin=0.5)])
    save(ev, tmp_path / "evidence")
    again = load(tmp_path / "evidence")
    assert to_markdown(again) == to_markdown(load(tmp_path / "evidence"))
    assert again.values == ev.values and again.claims == ev.claims
    np.testing.assert_allclose(again.examples[("top1", 1000)]["test_loss"],
                               ev.examples[("top1", 1000)]["test_loss"], rtol=1e-6)
    text = to_markdown(again)
    assert text.count("\nClaim ") == 2 and text.rstrip("\n").splitlines()[-1].startswith(
        "Verdict: ")


def test_a_folder_that_is_not_an_export_is_refused_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="confirmation.json is missing"):
        load(tmp_path)


def test_a_transcribed_difference_without_spread_takes_the_sign_flip_test() -> None:
    claims = [claim(id="flat"), claim(id="other", candidate="top2")]
    ev = Evidence("toy", [], None, [], [], claims, transcribed={
        "flat": Transcribed(3, 0.0, (0.0, 0.0), 1.0, 1.0, "a table"),
        "other": transcribed(0.01, "other")})
    flat, other = judge(ev)
    assert flat.verdict == "within noise" and flat.interval.p_value == 1.0
    assert "no effect size can be excluded with 3 seeds" in flat.line()
    assert other.adjusted_p == pytest.approx(0.02)  # Holm over both claims


def test_a_no_worse_than_claim_within_noise_states_the_power_against_its_margin() -> None:
    (judged,) = judge(evidence(0.09, [claim(margin=0.1)], noise=0.05))
    assert judged.verdict == "within noise"
    assert "could show it with 80% power only for a true Δ below " in judged.line()
