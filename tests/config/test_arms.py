"""Arms: each arm is the study's spec with the arm's sections applied."""

from __future__ import annotations

from pathlib import Path

import pytest

from framework.config import load_spec
from framework.errors import SpecError


STUDY = """
name: armed
model: {name: mlp, hidden: [8]}
data: {name: digits}
train: {max_steps: 10, eval_every: 5}
dropout: [{name: none}]
arms:
  standard:
    baseline: true
    dropout: [{name: standard, p: 0.2, sites: [hidden]}]
  none: {}
claims:
  - {id: helps, text: "Dropout helps.", candidate: standard, baseline: none,
     metric: test_error, direction: lower}
"""


def test_claims_naming_arms_validate_and_stay_with_the_whole_study(tmp_path: Path) -> None:
    path = tmp_path / "armed.yaml"
    path.write_text(STUDY)
    loaded = load_spec(path)
    assert [claim.candidate for claim in loaded.spec.claims] == ["standard"]


def test_a_claim_naming_no_arm_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "armed.yaml"
    path.write_text(STUDY.replace("candidate: standard", "candidate: standout"))
    with pytest.raises(SpecError, match=r"claims\[0\]\.candidate"):
        load_spec(path)


def test_an_arm_may_set_a_regime_of_the_data(tmp_path: Path) -> None:
    from framework.tuning.confirm import arm_loaded

    path = tmp_path / "armed.yaml"
    path.write_text(STUDY.replace("  none: {}", "  none: {data: {test_fraction: 0.3}}"))
    loaded = load_spec(path)
    assert arm_loaded(loaded, "none").spec.data.test_fraction == 0.3
    assert arm_loaded(loaded, "standard").spec.data.test_fraction == 0.2
