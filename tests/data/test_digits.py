from collections import Counter

import pytest
import torch

from framework.data.base import Batch
from framework.data.digits import Digits
from framework.data.specs import DigitsSpec
from framework.models.base import ModelOutput


@pytest.fixture(scope="module")
def digits() -> Digits:
    return Digits(DigitsSpec(), None)


def test_split_is_stratified_disjoint_and_fixed(digits: Digits) -> None:
    sizes = {name: len(labels) for name, (_, labels) in digits.splits.items()}
    assert sum(sizes.values()) == 1797
    assert sizes["test"] == pytest.approx(0.2 * 1797, abs=1)
    assert sizes["val"] == pytest.approx(0.2 * 1797, abs=2)
    for _, labels in digits.splits.values():
        counts = Counter(labels.tolist())
        assert len(counts) == 10
        # stratified: every class holds close to a tenth of each split
        assert max(counts.values()) - min(counts.values()) <= 0.05 * len(labels) + 2
    rows = {name: {tuple(x.flatten().tolist()) for x in inputs}
            for name, (inputs, _) in digits.splits.items()}
    assert not rows["test"] & rows["train"] and not rows["val"] & rows["test"]
    again = Digits(DigitsSpec(), None)
    assert torch.equal(again.splits["test"][1], digits.splits["test"][1])
    other = Digits(DigitsSpec(split_seed=1), None)
    assert not torch.equal(other.splits["test"][1], digits.splits["test"][1])


def test_info_and_scaled_inputs(digits: Digits) -> None:
    assert digits.info == {"input_dim": 64, "input_shape": (8, 8), "num_classes": 10,
                           "train_size": len(digits.splits["train"][1])}
    inputs = digits.splits["train"][0]
    assert inputs.min() == 0.0 and inputs.max() == 1.0
    assert digits.final_splits == ("test",)


def test_eval_covers_the_whole_split_and_train_batches_count_examples(digits: Digits) -> None:
    (val,) = list(digits.eval_batches("val", 16, 2))
    assert torch.equal(val.targets, digits.splits["val"][1])
    assert val.n_tokens == len(val.targets)
    train = list(digits.eval_batches("train", 16, 2))
    assert [len(b.targets) for b in train] == [16, 16]
    assert all(torch.equal(a.inputs, b.inputs) for a, b in
               zip(train, digits.eval_batches("train", 16, 2), strict=True))
    batch = digits.train_batch(32, torch.Generator().manual_seed(0))
    assert batch.inputs.shape == (32, 8, 8) and batch.n_tokens == 32


def test_metrics_are_accuracy_and_error(digits: Digits) -> None:
    targets = torch.tensor([0, 1, 2, 3])
    logits = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 0]), 10).float()
    metrics = digits.metrics(ModelOutput(logits=logits), Batch(torch.zeros(4, 8, 8), targets))
    assert metrics == {"accuracy": 0.75, "error": 0.25}
