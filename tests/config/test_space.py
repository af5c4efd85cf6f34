from pydantic import TypeAdapter
from pydantic import ValidationError
import pytest

from framework.config.space import Param
from framework.config.space import grid_size


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


def test_grid_size_is_the_product_of_each_parameters_points() -> None:
    space = {
        "dropout.0.p": parse({"type": "float", "low": 0.0, "high": 0.3, "step": 0.1}),
        "train.batch_size": parse({"type": "int", "low": 8, "high": 32, "step": 8}),
        "seed": parse({"type": "categorical", "choices": [0, 1, 2]}),
        "dropout.1": parse({"type": "choice", "options": {"a": {"value": 1}, "b": {"value": 2}}}),
    }
    assert [len(p.grid_points()) for p in space.values()] == [4, 4, 3, 2]
    assert grid_size(space) == 4 * 4 * 3 * 2
    assert grid_size({}) == 1


@pytest.mark.parametrize(
    "param",
    [{"type": "float", "low": 0.0, "high": 0.3},
     {"type": "choice", "options": {"a": {"value": 1, "space": {
         "p": {"type": "float", "low": 0.0, "high": 0.5, "step": 0.1}}}}}],
    ids=["float-without-step", "choice-with-a-sub-space"],
)
def test_a_space_without_a_grid_has_no_grid_size(param: dict) -> None:
    space = {"seed": parse({"type": "categorical", "choices": [0, 1]}), "x": parse(param)}
    assert grid_size(space) is None
