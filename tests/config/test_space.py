from pydantic import TypeAdapter
from pydantic import ValidationError
import pytest

from framework.config.space import Param


def parse(value: dict):
    return TypeAdapter(Param).validate_python(value)


def test_float_range_must_be_ordered() -> None:
    with pytest.raises(ValidationError, match="must not be greater"):
        parse({"type": "float", "low": 2.0, "high": 1.0})


def test_log_scale_needs_a_positive_low() -> None:
    with pytest.raises(ValidationError, match="low > 0"):
        parse({"type": "float", "low": 0.0, "high": 1.0, "log": True})


def test_choice_options_carry_their_own_space() -> None:
    param = parse({"type": "choice", "options": {
        "fixed": {"value": {"name": "standard"},
                  "space": {"p": {"type": "float", "low": 0.0, "high": 0.5}}},
        "off": {"value": {"name": "none"}},
    }})
    assert param.options["fixed"].space["p"].high == 0.5
    assert param.options["off"].space == {}
