"""SST-2: GLUE's dev file as test, val carved from the training file apart from train, batches."""

from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from framework.data.specs import SST2Spec
from framework.data.sst2 import SST2
from framework.data.sst2 import SST2_SHA256
from framework.data.sst2 import carve_val
from framework.data.sst2 import parse_labelled
from framework.data.sst2 import read_labelled
from framework.data.text import bundled_text


MODEL = SimpleNamespace(block_size=16)
WIDE = SimpleNamespace(block_size=64)  # longer than any bundled sentence: nothing truncated


def write(path: Path, rows: list[tuple[str, int]]) -> str:
    path.write_text("sentence\tlabel\n" + "".join(f"{s} \t{y}\n" for s, y in rows))
    return str(path)


def bundled(split: str) -> list[tuple[list[str], int]]:
    return parse_labelled(bundled_text(f"sst2_{split}.tsv.gz", SST2_SHA256[split]))


def text(examples: list[tuple[list[str], int]]) -> list[str]:
    return [" ".join(words) for words, _ in examples]


def runs(row: str) -> set[str]:
    """Every contiguous run of ``row``'s tokens, ``row`` itself included."""
    words = row.split()
    return {" ".join(words[i:j]) for i in range(len(words)) for j in range(i + 1, len(words) + 1)}


@pytest.fixture(scope="module")
def carved() -> tuple[list, list, int]:
    return carve_val(bundled("train"), 872, 0)


@pytest.fixture(scope="module")
def full() -> SST2:
    return SST2(SST2Spec(min_count=1), WIDE)


def test_no_val_row_is_inside_a_train_row_or_holds_one(carved: tuple[list, list, int]) -> None:
    """Checked without the loader's method: a substring search for each val row among all train
    rows, and each val row's runs looked up among the train rows."""
    train, val, dropped = text(carved[0]), text(carved[1]), carved[2]
    assert len(val) == 872 and len(train) + len(val) + dropped == 67_349
    train_rows = set(train)
    assert not train_rows & set(val)
    all_train = "\n".join(f" {row} " for row in train)
    assert [row for row in val if f" {row} " in all_train] == []
    assert [row for row in val if runs(row) & train_rows] == []
    # The rows left out of both are sub-phrases of val rows.
    left_out = Counter(text(bundled("train"))) - Counter(train) - Counter(val)
    assert left_out.total() == dropped > 0
    all_val = "\n".join(f" {row} " for row in val)
    assert [row for row in left_out if f" {row} " not in all_val] == []


def test_the_loader_splits_as_carved_and_tests_on_glue_dev(full: SST2, carved) -> None:
    train, val, dropped = carved
    assert full.final_splits == ("test",)
    assert full.info["train_size"] == len(train) and full.info["dropped_rows"] == dropped
    itos = full.itos
    decoded = [" ".join(itos[i] for i in seq[1:].tolist()) for seq in full.splits["train"][0]]
    assert decoded == text(train)
    assert full.splits["train"][1].tolist() == [y for _, y in train]
    assert full.splits["val"][1].tolist() == [y for _, y in val]
    dev = bundled("dev")
    seqs, labels = full.splits["test"]
    assert len(dev) == 872 and labels.tolist() == [y for _, y in dev]
    assert [len(s) for s in seqs] == [len(words) + 1 for words, _ in dev]


def test_another_split_seed_draws_another_val(tmp_path: Path) -> None:
    rows = [(" ".join(words), y) for words, y in bundled("train")[:5000]]
    path = write(tmp_path / "t.tsv", rows)

    def val_of(seed: int) -> list[int]:
        spec = SST2Spec(train_path=path, test_path=path, val_size=50, split_seed=seed)
        return SST2(spec, MODEL).splits["val"][0]

    first, again, other = val_of(0), val_of(0), val_of(1)
    assert len(first) == len(other) == 50
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))


HAND_MADE = [
    ("the film is good", 1),   # root A
    ("the film", 1),           # inside A and B
    ("the film is bad", 0),    # root B
    ("is bad", 0),             # inside B
    ("good", 1),               # inside A (not inside "no goodness here": tokens, not letters)
    ("a dull plot", 0),        # root C
    ("dull", 0),               # inside C, twice
    ("dull", 0),
    ("no goodness here", 1),   # root D
    ("the film is good", 1),   # A again: goes where A goes
]
EXPECTED = {  # val root: (val rows, dropped rows)
    "the film is good": (["the film is good"] * 2, ["the film", "good"]),
    "the film is bad": (["the film is bad"], ["the film", "is bad"]),
    "a dull plot": (["a dull plot"], ["dull", "dull"]),
    "no goodness here": (["no goodness here"], []),
}


def test_a_hand_made_file_drops_what_lies_inside_a_val_root(tmp_path: Path) -> None:
    examples = [(s.split(), y) for s, y in HAND_MADE]
    drawn = set()
    for seed in range(8):
        train, val, dropped = carve_val(examples, 1, seed)
        root = text(val)[0]
        drawn.add(root)
        in_val, left_out = EXPECTED[root]
        assert text(val) == in_val and dropped == len(left_out)
        rest = [s for s, _ in HAND_MADE]
        for row in in_val + left_out:
            rest.remove(row)
        assert text(train) == rest  # in the file's order
    assert len(drawn) > 1
    path = write(tmp_path / "t.tsv", HAND_MADE)
    data = SST2(SST2Spec(train_path=path, test_path=path, val_size=1, min_count=1), MODEL)
    assert data.info["dropped_rows"] + data.info["train_size"] + len(data.splits["val"][1]) == 10
    with pytest.raises(ValueError, match="4 root sentences.*val_size 4 leaves none to train"):
        SST2(SST2Spec(train_path=path, test_path=path, val_size=4), MODEL)


@pytest.fixture
def small(tmp_path: Path) -> SST2:
    train = write(tmp_path / "train.tsv", [("a good film", 1), ("a bad film", 0),
                                            ("good good", 1), ("bad", 0), ("odd one", 1)])
    test = write(tmp_path / "test.tsv", [("good film", 1), ("a terrible film", 0), ("bad", 0)])
    # split_seed 0 draws "odd one" as val (asserted below); the vocabulary is the other rows'.
    spec = SST2Spec(train_path=train, test_path=test, min_count=2, val_size=1, split_seed=0)
    return SST2(spec, MODEL)


def test_rare_and_unseen_words_map_to_unk_and_cls_comes_first(small: SST2) -> None:
    unk, cls = small.stoi["<unk>"], small.stoi["<cls>"]
    assert small.splits["val"][0][0].tolist() == [cls, unk, unk]  # "odd one": not in train
    assert set(small.itos[3:]) == {"a", "good", "film", "bad"}
    seqs, labels = small.splits["test"]
    assert seqs[1].tolist() == [cls, small.stoi["a"], unk, small.stoi["film"]]
    assert labels.tolist() == [1, 0, 0]


def test_the_vocabulary_keeps_the_words_seen_min_count_times_in_train(tmp_path: Path) -> None:
    rows = [("x y z", 1), ("x y", 0), ("y w", 1), ("v", 0), ("u t", 1), ("w", 0)]
    path = write(tmp_path / "t.tsv", rows)
    data = SST2(SST2Spec(train_path=path, test_path=path, min_count=2, val_size=1), MODEL)
    train, _, _ = carve_val([(s.split(), y) for s, y in rows], 1, 0)
    counts = Counter(w for words, _ in train for w in words)
    kept = [w for w in counts if counts[w] >= 2]
    assert sorted(data.itos[3:]) == sorted(kept) and data.itos[:3] == ["<pad>", "<unk>", "<cls>"]


def test_batches_pad_with_a_mask_of_real_tokens(small: SST2) -> None:
    batch = small.train_batch(6, torch.Generator().manual_seed(0))
    lengths = torch.tensor([len(s) for s in small.splits["train"][0]])
    assert batch.mask.shape == batch.inputs.shape
    assert batch.inputs.size(1) == int(batch.mask.sum(1).max())
    assert torch.all(batch.inputs[~batch.mask] == 0)  # <pad>
    assert set(batch.mask.sum(1).tolist()) <= set(lengths.tolist())
    assert batch.n_tokens == int(batch.mask.sum())


def test_val_and_test_evaluation_cover_every_example_once(tmp_path: Path) -> None:
    rows = [(f"w{i % 7} w{i % 3}", i % 2) for i in range(23)]
    path = write(tmp_path / "t.tsv", rows)
    data = SST2(SST2Spec(train_path=path, test_path=path, min_count=1, val_size=8), MODEL)
    for split in ("test", "val"):
        batches = list(data.eval_batches(split, 5, n_batches=1))
        sizes = [len(b.targets) for b in batches]
        assert sum(sizes) == len(data.splits[split][1]) and max(sizes) - min(sizes) <= 1
        assert torch.equal(torch.cat([b.targets for b in batches]), data.splits[split][1])
    assert torch.cat([b.targets for b in data.eval_batches("test", 5, 1)]).tolist() == [
        y for _, y in rows]
    first = [b.inputs for b in data.eval_batches("train", 4, 3)]
    again = [b.inputs for b in data.eval_batches("train", 4, 3)]
    assert len(first) == 3 and all(torch.equal(a, b) for a, b in zip(first, again, strict=True))


def test_max_len_truncates_and_metrics_score_accuracy(tmp_path: Path) -> None:
    path = write(tmp_path / "t.tsv", [("x " * 30, 1), ("y", 0), ("z", 1), ("w", 0)])
    test = write(tmp_path / "test.tsv", [("x " * 30, 1), ("y", 0)])
    data = SST2(SST2Spec(train_path=path, test_path=test, min_count=1, max_len=8, val_size=1),
                MODEL)
    assert all(len(s) <= 8 for s in data.splits["train"][0])
    assert len(data.splits["test"][0][0]) == 8
    batch = next(data.eval_batches("test", 2, 1))
    logits = torch.tensor([[0.0, 1.0], [0.0, 1.0]])  # predicts 1 for both: one right
    assert data.metrics(SimpleNamespace(logits=logits), batch) == {"accuracy": 0.5}
    labelled = list(data.labelled_batches(test, 1))
    assert [b.targets.item() for b in labelled] == [1, 0]


def test_a_malformed_line_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.tsv"
    path.write_text("sentence\tlabel\nfine\t1\nno label here\n")
    with pytest.raises(ValueError, match=r"bad.tsv, line 3"):
        read_labelled(path)
