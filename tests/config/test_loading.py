from pathlib import Path

import pytest

from framework.config import load_spec
from framework.config.limits import MAX_STEPS
from framework.config.limits import check_training_length
from framework.errors import SpecError
from tests.conftest import ROOT
from tests.conftest import TINY_STUDY
from tests.conftest import write_study


@pytest.mark.parametrize("study", sorted((ROOT / "studies").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_study_validates(study: Path) -> None:
    if study.name.startswith("hf_"):
        pytest.importorskip("transformers", reason="the Hugging Face studies need the optional "
                            "`hf` extra (pip install -e '.[hf]')")
    loaded = load_spec(study)
    assert loaded.spec.name


def test_interpolation_sees_the_overrides(tmp_path: Path) -> None:
    text = TINY_STUDY.format(name="tiny")
    text = text.replace("max_steps: 6", "max_steps: '${train.eval_every}'")
    loaded = load_spec(write_study(tmp_path, text), ["train.lr=0.25", "train.eval_every=2"])
    assert loaded.spec.train.max_steps == 2
    assert loaded.spec.train.lr == 0.25


@pytest.mark.parametrize(
    ("overrides", "key", "fragment"),
    [
        (["dropout.0.p=1.5"], "dropout[0].p", "allowed: 0.0 <= p < 1.0"),
        (["train.lr=fast"], "train.lr", "valid number"),
        (["train.max_stepz=3"], "train.max_stepz", "did you mean 'max_steps'"),
        (["dropout.0.name=standrd"], "dropout[0]", "did you mean 'standard'"),
        (["search.space.dropout\\.0\\.p.low=0.5"], "search.space['dropout.0.p']", "greater"),
        (["search.space.dropout\\.0\\.p.high=1.5"], "search.space['dropout.0.p']", "less than 1"),
        (["model.n_head=3"], "model", "multiple of n_head"),
        (["search.objectives=[{metric: val_acc}]"], "search.objectives[0].metric", "val_acc"),
        (["dropout=[{name: standard}, {name: none}]"], "dropout[1].sites", "both target"),
        (["search.space.train\\.nope={type: int, low: 1, high: 2}"], "search.space", "nope"),
    ],
)
def test_bad_values_name_the_file_and_the_key(
    tiny_study: Path, overrides: list[str], key: str, fragment: str
) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(tiny_study, overrides)
    assert info.value.source == str(tiny_study)
    assert info.value.key.startswith(key), info.value
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("name: x\nmodel: [unclosed\n", "not valid YAML"),
        ("- just\n- a list\n", "mapping"),
        ("name: x\nmodel: {name: gpt}\ndata: {name: shakespeare_char}\nseed: ${nowhere}\n",
         "cannot resolve"),
    ],
)
def test_unreadable_files_are_spec_errors(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(SpecError, match=fragment) as info:
        load_spec(write_study(tmp_path, text))
    assert "study.yaml" in str(info.value)


@pytest.mark.parametrize("override", ["train.max_steps", "=3", "dropout.7.p=0.1"])
def test_bad_overrides_are_spec_errors(tiny_study: Path, override: str) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(tiny_study, [override])
    assert override in str(info.value)


def test_missing_file_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="not found"):
        load_spec(tmp_path / "absent.yaml")


@pytest.mark.parametrize(
    ("text", "what"),
    [("42\n", "an int"), ("[1, 2]\n", "a list"), ("just words\n", "a string"), ("", "empty"),
     ("# only a comment\n", "empty"), ("3.5\n", "a float")],
)
def test_a_study_file_that_is_not_a_mapping_says_what_it_is(tmp_path: Path, text: str,
                                                            what: str) -> None:
    study = write_study(tmp_path, text)
    with pytest.raises(SpecError) as info:
        load_spec(study)
    assert info.value.source == str(study)
    assert info.value.message == ("a study file is a YAML mapping (name:, model:, ...); "
                                  f"this one is {what}")


def test_a_directory_is_not_a_study_file_and_its_studies_are_named(tmp_path: Path) -> None:
    write_study(tmp_path, TINY_STUDY.format(name="a"), "a.yaml")
    write_study(tmp_path, TINY_STUDY.format(name="b"), "b.yml")
    (tmp_path / "notes.txt").write_text("not a study")
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path)
    assert info.value.source == str(tmp_path)
    assert info.value.message == ("a directory, not a study file; the study files in it: a.yaml, "
                                  "b.yml")


@pytest.mark.parametrize(
    "overrides",
    [["train.lr=1", "train.lr=2"], ["train.lr=1", "train[lr]=2"],
     ["search.space[dropout.0.p].low=0.1", "search.space.dropout\\.0\\.p.low=0.2"]],
    ids=["same", "bracketed", "escaped"],
)
def test_a_key_given_twice_is_refused(tiny_study: Path, overrides: list[str]) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(tiny_study, overrides)
    assert info.value.key == f"override {overrides[1]!r}"
    assert "given twice" in info.value.message and repr(overrides[0]) in info.value.message


@pytest.mark.parametrize(
    "key",
    ["search.space[dropout.0.p].high", "search.space['dropout.0.p'].high",
     'search.space["dropout.0.p"].high', "search.space.dropout\\.0\\.p.high"],
)
def test_a_space_key_with_dots_is_reached_in_brackets_or_escaped(tiny_study: Path,
                                                                 key: str) -> None:
    loaded = load_spec(tiny_study, [f"{key}=0.2"])
    assert loaded.spec.search.space["dropout.0.p"].high == 0.2
    assert list(loaded.spec.search.space) == ["dropout.0.p"]


def test_a_dotted_path_into_a_key_with_dots_is_refused_with_the_bracketed_form(
    tiny_study: Path,
) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(tiny_study, ["search.space.dropout.0.p.high=0.2"])
    assert info.value.key == "override 'search.space.dropout.0.p.high=0.2'"
    assert "'dropout.0.p' is: a key with dots goes in brackets" in info.value.message
    assert "'search.space[dropout.0.p].high=0.2'" in info.value.message


def test_a_bracketed_override_of_a_searched_key_is_refused(tiny_study: Path) -> None:
    with pytest.raises(SpecError, match=r"sets dropout\.0\.p, which search\.space"):
        load_spec(tiny_study, ["dropout[0].p=0.2"])


GRID_SPACE = ("search.space={dropout.0.p: {type: float, low: 0.0, high: 0.2, step: 0.1}, "
              "seed: {type: categorical, choices: [0, 1]}}")


def test_a_grid_budget_beyond_the_grid_is_refused(tiny_study: Path) -> None:
    overrides = [GRID_SPACE, "search.sampler={name: grid}"]
    assert load_spec(tiny_study, [*overrides, "search.n_trials=6"]).spec.search.n_trials == 6
    with pytest.raises(SpecError) as info:
        load_spec(tiny_study, [*overrides, "search.n_trials=7"])
    assert info.value.key == "search.n_trials"
    assert "7 trials of a grid of 6 points (3 x 2) would repeat" in info.value.message


def test_a_budget_beyond_the_grid_is_refused_in_an_arm(tiny_study: Path) -> None:
    text = tiny_study.read_text() + "arms:\n  wide: {search: {n_trials: 9}}\n  narrow: {}\n"
    study = write_study(tiny_study.parent, text, "armed.yaml")
    with pytest.raises(SpecError, match="9 trials of a grid of 6 points") as info:
        load_spec(study, [GRID_SPACE, "search.sampler={name: grid}"])
    assert info.value.key == "arms.wide.search.n_trials"


def test_evaluations_after_the_last_step_only_are_a_warning(tiny_study: Path) -> None:
    assert load_spec(tiny_study).warnings == ()
    loaded = load_spec(tiny_study, ["train.eval_every=7"])
    assert len(loaded.warnings) == 1
    assert loaded.warnings[0].startswith(
        "train.eval_every: 7 is more than train.max_steps (6): trials are evaluated only after "
        "their last step")


@pytest.mark.parametrize(
    ("overrides", "key"),
    [(["train.max_steps=1000000000000"], "train.max_steps"),
     (["search.space={train.max_steps: {type: int, low: 10, high: 20000000}}"],
      "search.space['train.max_steps']")],
    ids=["fixed", "searched"],
)
def test_a_training_longer_than_the_bound_is_refused(tiny_study: Path, overrides: list[str],
                                                      key: str) -> None:
    loaded = load_spec(tiny_study, overrides)  # loading it is fine: `run` checks, `--yes` skips
    with pytest.raises(SpecError) as info:
        check_training_length(loaded.spec, loaded.raw)
    assert info.value.key == key
    assert f"more than {MAX_STEPS:,} per trial" in info.value.message
    assert "pass --yes to `dropout-lab run`" in info.value.message
    check_training_length(load_spec(tiny_study, [f"train.max_steps={MAX_STEPS}"]).spec, {})


def test_an_arms_training_length_is_named_by_the_arm(tiny_study: Path) -> None:
    text = tiny_study.read_text() + "arms:\n  long: {train: {max_steps: 99999999}}\n  short: {}\n"
    loaded = load_spec(write_study(tiny_study.parent, text, "armed.yaml"))
    with pytest.raises(SpecError) as info:
        check_training_length(loaded.spec, loaded.raw)
    assert info.value.key == "arms.long.train.max_steps"
