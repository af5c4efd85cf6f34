from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from framework.data.specs import SST2Spec
from framework.data.sst2 import SST2
from framework.data.sst2 import read_labelled


MODEL = SimpleNamespace(block_size=16)


def write(path: Path, rows: list[tuple[str, int]]) -> str:
    path.write_text("sentence\tlabel\n" + "".join(f"{s} \t{y}\n" for s, y in rows))
    return str(path)


@pytest.fixture
def small(tmp_path: Path) -> SST2:
    train = write(tmp_path / "train.tsv", [("a good film", 1), ("a bad film", 0),
                                            ("good good", 1), ("bad", 0), ("odd one", 1)])
    dev = write(tmp_path / "dev.tsv", [("good film", 1), ("a terrible film", 0), ("bad", 0)])
    return SST2(SST2Spec(train_path=train, dev_path=dev, min_count=2), MODEL)


def test_bundled_sst2_has_the_glue_sizes_and_a_min_count_vocabulary() -> None:
    data = SST2(SST2Spec(min_count=3), MODEL)
    seqs, labels = data.splits["train"]
    assert len(seqs) == 67_349 and len(data.splits["val"][0]) == 872
    assert set(labels.tolist()) == {0, 1} and data.info["num_classes"] == 2
    assert data.itos[:3] == ["<pad>", "<unk>", "<cls>"]
    counts = Counter(w for words, _ in read_labelled_bundled() for w in words)
    assert all(counts[w] >= 3 for w in data.itos[3:])
    assert len(data.itos) - 3 == sum(1 for c in counts.values() if c >= 3)
    assert max(len(s) for s in seqs) <= 16 and all(s[0] == 2 for s in seqs[:100])


def read_labelled_bundled():
    from framework.data.sst2 import SST2_SHA256
    from framework.data.sst2 import parse_labelled
    from framework.data.text import bundled_text

    return parse_labelled(bundled_text("sst2_train.tsv.gz", SST2_SHA256["train"]))


def test_rare_and_unseen_words_map_to_unk_and_cls_comes_first(small: SST2) -> None:
    assert set(small.itos[3:]) == {"a", "good", "film", "bad"}
    seqs, labels = small.splits["val"]
    unk, cls = small.stoi["<unk>"], small.stoi["<cls>"]
    assert seqs[1].tolist() == [cls, small.stoi["a"], unk, small.stoi["film"]]
    assert labels.tolist() == [1, 0, 0]


def test_batches_pad_with_a_mask_of_real_tokens(small: SST2) -> None:
    batch = small.train_batch(6, torch.Generator().manual_seed(0))
    lengths = torch.tensor([len(small.splits["train"][0][i]) for i in range(5)])
    assert batch.mask.shape == batch.inputs.shape
    assert batch.inputs.size(1) == int(batch.mask.sum(1).max())
    assert torch.all(batch.inputs[~batch.mask] == 0)  # <pad>
    assert set(batch.mask.sum(1).tolist()) <= set(lengths.tolist())
    assert batch.n_tokens == int(batch.mask.sum())


def test_dev_evaluation_covers_every_example_once(tmp_path: Path) -> None:
    rows = [(f"w{i % 7} w{i % 3}", i % 2) for i in range(23)]
    path = write(tmp_path / "t.tsv", rows)
    data = SST2(SST2Spec(train_path=path, dev_path=path, min_count=1), MODEL)
    batches = list(data.eval_batches("val", 5, n_batches=1))
    sizes = [len(b.targets) for b in batches]
    assert sum(sizes) == 23 and max(sizes) - min(sizes) <= 1
    assert torch.cat([b.targets for b in batches]).tolist() == [y for _, y in rows]
    first = [b.inputs for b in data.eval_batches("train", 4, 3)]
    again = [b.inputs for b in data.eval_batches("train", 4, 3)]
    assert len(first) == 3 and all(torch.equal(a, b) for a, b in zip(first, again, strict=True))


def test_max_len_truncates_and_metrics_score_accuracy(tmp_path: Path) -> None:
    path = write(tmp_path / "t.tsv", [("x " * 30, 1), ("y", 0)])
    data = SST2(SST2Spec(train_path=path, dev_path=path, min_count=1, max_len=8), MODEL)
    assert len(data.splits["train"][0][0]) == 8
    batch = next(data.eval_batches("val", 2, 1))
    logits = torch.tensor([[0.0, 1.0], [0.0, 1.0]])  # predicts 1 for both: one right
    assert data.metrics(SimpleNamespace(logits=logits), batch) == {"accuracy": 0.5}
    labelled = list(data.labelled_batches(path, 1))
    assert [b.targets.item() for b in labelled] == [1, 0]


def test_a_malformed_line_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.tsv"
    path.write_text("sentence\tlabel\nfine\t1\nno label here\n")
    with pytest.raises(ValueError, match=r"bad.tsv, line 3"):
        read_labelled(path)
