from types import SimpleNamespace

import torch

from framework.data.specs import ShakespeareCharSpec
from framework.data.text import CharText


def test_bundled_tiny_shakespeare_has_the_published_shape(tmp_path) -> None:
    data = CharText(ShakespeareCharSpec(), SimpleNamespace(block_size=32))
    assert data.info["vocab_size"] == 65
    total = len(data.splits["train"]) + len(data.splits["val"])
    assert total == 1_115_394
    assert len(data.splits["train"]) == int(total * 0.9)
    assert data.decode(data.encode("First Citizen")) == "First Citizen"


def test_targets_are_inputs_shifted_and_eval_batches_repeat(tmp_path) -> None:
    text = tmp_path / "t.txt"
    text.write_text("abcdefghij" * 50)
    data = CharText(ShakespeareCharSpec(path=str(text), block_size=8), None)
    batch = data.train_batch(4, torch.Generator().manual_seed(0))
    assert batch.inputs.shape == (4, 8)
    assert torch.equal(batch.inputs[:, 1:], batch.targets[:, :-1])
    first = [b.inputs for b in data.eval_batches("val", 2, 3)]
    second = [b.inputs for b in data.eval_batches("val", 2, 3)]
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
