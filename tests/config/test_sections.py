"""The fixed sections of a spec: defaults that depend on other keys."""

from pathlib import Path

import pytest

from framework.config import load_spec
from framework.config.sections import SearchSpec
from framework.config.sections import TrainSpec
from framework.errors import SpecError
from tests.conftest import TINY_STUDY
from tests.conftest import write_study


@pytest.mark.parametrize(("max_steps", "warmup"), [(200, 20), (1000, 100), (5000, 100), (5, 0)])
def test_the_default_warmup_is_a_tenth_of_training_at_most_100(max_steps: int,
                                                                warmup: int) -> None:
    assert TrainSpec(max_steps=max_steps).warmup_steps == warmup


def test_a_warmup_written_is_kept() -> None:
    assert TrainSpec(max_steps=200, warmup_steps=100).warmup_steps == 100


def test_a_bad_max_steps_without_a_warmup_is_one_problem(tmp_path: Path) -> None:
    """The warm-up computed from it is not reported as a second problem."""
    text = TINY_STUDY.format(name="tiny").replace(", warmup_steps: 1", "")
    study = write_study(tmp_path, text)
    assert load_spec(study, ["train.max_steps=300"]).spec.train.warmup_steps == 30
    with pytest.raises(SpecError) as refused:
        load_spec(study, ["train.max_steps=0"])
    assert refused.value.key == "train.max_steps" and "problems" not in str(refused.value)


@pytest.mark.parametrize("grace_period", [1, 30])
def test_a_grace_period_within_one_heartbeat_interval_is_refused(tmp_path: Path,
                                                                 grace_period: int) -> None:
    """A live worker's trial would be declared dead between two of its heartbeats."""
    study = write_study(tmp_path, TINY_STUDY.format(name="tiny"))
    with pytest.raises(SpecError) as refused:
        load_spec(study, ["search.heartbeat_interval=30", f"search.grace_period={grace_period}"])
    message = str(refused.value)
    assert refused.value.key == "search.grace_period" and "\n" not in message
    assert "not longer than search.heartbeat_interval (30 s)" in message
    assert "must exceed the interval" in message and "unset for 2 x the interval (60 s)" in message


def test_the_grace_period_in_force_outlasts_the_interval() -> None:
    assert SearchSpec(heartbeat_interval=30).stale_after == 60
    assert SearchSpec(heartbeat_interval=1).stale_after == 2
    assert SearchSpec(heartbeat_interval=30, grace_period=31).stale_after == 31
