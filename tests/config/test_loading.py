from pathlib import Path

import pytest

from framework.config import load_spec
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
