"""``train_fraction``: the text datasets train on a prefix of their training split only."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from framework.config import load_spec
from framework.data.charstream import CharStream
from framework.data.specs import CharStreamSpec
from framework.data.specs import PTBSpec
from framework.data.specs import ShakespeareCharSpec
from framework.data.text import CharText
from framework.data.wordlm import WordLM
from framework.errors import SpecError
from tests.conftest import TINY_STUDY
from tests.conftest import write_study


def text_file(folder: Path, n: int = 4000) -> Path:
    path = folder / "text.txt"
    path.write_text("".join(chr(97 + (i * 7) % 26) for i in range(n)))
    return path


@pytest.mark.parametrize("loader, spec", [(CharText, ShakespeareCharSpec),
                                          (CharStream, CharStreamSpec)])
def test_a_fraction_keeps_the_start_of_the_train_split_and_the_whole_held_out_text(
        tmp_path: Path, loader, spec) -> None:
    path = str(text_file(tmp_path))
    model = SimpleNamespace(block_size=8)
    full = loader(spec(path=path), model)
    part = loader(spec(path=path, train_fraction=0.25), model)
    n_train = len(full.splits["train"])
    assert n_train == 3600
    assert torch.equal(part.splits["train"], full.splits["train"][:900])
    for split in ("val", "test"):
        assert torch.equal(part.splits[split], full.splits[split])
    assert part.info["train_size"] == 900 and full.info["train_size"] == 3600
    assert part.info["vocab_size"] == full.info["vocab_size"]


def test_a_fraction_of_the_bundled_tiny_shakespeare(tmp_path: Path) -> None:
    data = CharText(ShakespeareCharSpec(train_fraction=0.1), SimpleNamespace(block_size=64))
    assert len(data.splits["train"]) == int(int(1_115_394 * 0.9) * 0.1)
    held_out = 1_115_394 - int(1_115_394 * 0.9)
    assert len(data.splits["val"]) + len(data.splits["test"]) == held_out


def test_word_corpora_keep_the_whole_vocabulary_and_the_valid_and_test_files(
        tmp_path: Path) -> None:
    for split, words in (("train", "a b c d e f g h " * 50), ("valid", "a b c d " * 20),
                         ("test", "e f g h " * 20)):
        (tmp_path / f"ptb.{split}.txt").write_text(words.strip() + " z\n" * 3)
    model = SimpleNamespace(block_size=4)
    full = WordLM(PTBSpec(path=str(tmp_path)), model)
    half = WordLM(PTBSpec(path=str(tmp_path), train_fraction=0.5), model)
    assert half.vocab == full.vocab
    n = len(full.splits["train"])
    assert torch.equal(half.splits["train"], full.splits["train"][: n // 2])
    for split in ("val", "test"):
        assert torch.equal(half.splits[split], full.splits[split])


def test_a_fraction_too_small_for_the_windows_is_refused_naming_the_key(tmp_path: Path) -> None:
    study = write_study(tmp_path, TINY_STUDY.format(name="tiny"))
    loaded = load_spec(study, ["data.train_fraction=0.5"])
    assert loaded.spec.data.train_fraction == 0.5
    with pytest.raises(SpecError) as error:
        load_spec(study, ["data.train_fraction=0.00001"])
    assert error.value.key == "data.train_fraction"
    assert "too few for windows of 16" in str(error.value)
    with pytest.raises(SpecError) as error:
        load_spec(study, ["data.train_fraction=0"])
    assert error.value.key == "data.train_fraction"
