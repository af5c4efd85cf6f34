"""Character windows: the 90/10 cut with the held-out part halved into val and test, the whole
test split in non-overlapping windows, and the check that refuses splits too short."""

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from framework.data.charstream import CharStream
from framework.data.specs import CharStreamSpec
from framework.data.specs import ShakespeareCharSpec
from framework.data.text import CharText
from framework.errors import SpecError


def text_file(folder: Path, n: int = 2001) -> Path:
    path = folder / "text.txt"
    path.write_text("".join(chr(97 + (i * 7) % 26) for i in range(n)))
    return path


def test_bundled_tiny_shakespeare_has_the_published_shape(tmp_path) -> None:
    data = CharText(ShakespeareCharSpec(), SimpleNamespace(block_size=32))
    assert data.info["vocab_size"] == 65 and data.final_splits == ("test",)
    sizes = {name: len(split) for name, split in data.splits.items()}
    total = sum(sizes.values())
    assert total == 1_115_394
    assert sizes["train"] == int(total * 0.9)  # nanoGPT's train split
    held_out = total - sizes["train"]
    assert (sizes["val"], sizes["test"]) == (held_out // 2, held_out - held_out // 2)
    assert data.decode(data.encode("First Citizen")) == "First Citizen"


@pytest.mark.parametrize("loader, spec", [(CharText, ShakespeareCharSpec),
                                          (CharStream, CharStreamSpec)])
def test_val_and_test_are_the_two_halves_of_the_held_out_text(tmp_path: Path, loader,
                                                             spec) -> None:
    path = text_file(tmp_path, n=2001)
    data = loader(spec(path=str(path), held_out_fraction=0.2), SimpleNamespace(block_size=5))
    ids = torch.cat([data.splits[name] for name in ("train", "val", "test")])
    chars = data.chars
    assert "".join(chars[i] for i in ids.tolist()) == path.read_text()  # disjoint, in order
    assert len(data.splits["train"]) == int(2001 * 0.8)
    assert (len(data.splits["val"]), len(data.splits["test"])) == (200, 201)
    assert data.final_splits == ("test",)


def test_test_batches_cover_the_whole_test_split_without_overlap(tmp_path: Path) -> None:
    path = text_file(tmp_path, n=4001)
    spec = ShakespeareCharSpec(path=str(path), block_size=8, held_out_fraction=0.5)
    data = CharText(spec, None)
    test = data.splits["test"]  # 1001 characters: 125 whole windows of 8, one left over
    batches = list(data.eval_batches("test", 16, n_batches=1))  # n_batches does not apply
    assert len(batches) == 8 and {len(b.inputs) for b in batches} == {15, 16}
    inputs = torch.cat([b.inputs for b in batches])
    targets = torch.cat([b.targets for b in batches])
    assert inputs.shape == (125, 8)
    assert torch.equal(inputs.flatten(), test[:1000]) and torch.equal(targets.flatten(), test[1:])
    again = torch.cat([b.inputs for b in data.eval_batches("test", 16, 1)])
    assert torch.equal(inputs, again)


def test_targets_are_inputs_shifted_and_eval_batches_repeat(tmp_path) -> None:
    text = tmp_path / "t.txt"
    text.write_text("abcdefghij" * 50)
    data = CharText(ShakespeareCharSpec(path=str(text), block_size=8), None)
    batch = data.train_batch(4, torch.Generator().manual_seed(0))
    assert batch.inputs.shape == (4, 8)
    assert torch.equal(batch.inputs[:, 1:], batch.targets[:, :-1])
    first = [b.inputs for b in data.eval_batches("val", 2, 3)]
    second = [b.inputs for b in data.eval_batches("val", 2, 3)]
    assert len(first) == 3 and all(torch.equal(a, b) for a, b in zip(first, second, strict=True))


def study(block_size: int, batch_size: int = 4) -> SimpleNamespace:
    return SimpleNamespace(model=SimpleNamespace(block_size=block_size),
                           train=SimpleNamespace(batch_size=batch_size))


def test_a_held_out_half_too_short_for_the_windows_is_refused_naming_the_key(
        tmp_path: Path) -> None:
    path = str(text_file(tmp_path, n=4000))
    ShakespeareCharSpec(path=path, held_out_fraction=0.01).check(study(16))  # halves of 20
    with pytest.raises(SpecError) as error:  # halves of 19 and 20: fine at 0.1, so the fraction
        ShakespeareCharSpec(path=path, held_out_fraction=0.0097).check(study(18))
    assert error.value.key == "data.held_out_fraction"
    assert "the val split of" in str(error.value) and "has 19 characters" in str(error.value)
    with pytest.raises(SpecError) as error:  # both halves short
        ShakespeareCharSpec(path=path, held_out_fraction=0.005).check(study(16))
    assert error.value.key == "data.held_out_fraction"
    assert "the val and test splits of" in str(error.value)
    assert "have 10 and 10 characters" in str(error.value)
    with pytest.raises(SpecError) as error:  # too short at 0.1 too: the block is too long
        ShakespeareCharSpec(path=path, block_size=300).check(study(16))
    assert error.value.key == "data.block_size" and "have 200 and 200" in str(error.value)
    with pytest.raises(SpecError) as error:  # streams: 200 characters in 16 rows of 12
        CharStreamSpec(path=path).check(study(12, batch_size=16))
    assert error.value.key == "model.block_size" and "16 streams" in str(error.value)
