"""GLUE SST-2: binary sentiment classification of movie-review sentences.

Socher et al., "Recursive Deep Models for Semantic Compositionality Over a Sentiment Treebank",
EMNLP 2013; as packaged in GLUE (Wang et al., ICLR 2019): 67,349 training rows and 872
development sentences, already tokenised (lower-cased, space-separated), one ``sentence<TAB>label``
line each after a header. Both files ship gzip-compressed in ``framework/data/files`` and are
checked against the SHA-256 of the original bytes.

Splits. ``test`` is GLUE's dev file (GLUE's test labels are not public), scored once, on the best
checkpoint. ``val``, which chooses (search, pruning, best checkpoint), is carved from the training
file. GLUE's training rows are the treebank's phrases of the same sentences, many of them
sub-phrases of other rows, so a random slice of the file is not held out (88.7 % of a 5,000-row
tail occurs verbatim inside earlier rows). The carve instead keeps every ``val`` row apart from
every ``train`` row: neither contains the other, token for token (a row's tokens are a contiguous
run of the other's; identical rows count as contained):

* identical rows are one phrase (every copy goes where its phrase goes);
* a *root* is a phrase no other phrase contains; each phrase lies inside one or more roots
  (containment is transitive), which are found by looking each root's contiguous token runs up in
  a dict of the phrases (roots taken longest first: a phrase inside a longer one is no root, and
  what it contains is found inside that one's roots);
* ``val_size`` roots, drawn with ``split_seed``, are ``val``;
* ``train`` is every row none of whose roots is a ``val`` root; the other rows, the sub-phrases of
  ``val`` roots (also those inside a ``train`` root: they would be inside a ``val`` row), are
  dropped from both (``info["dropped_rows"]``).

``train_examples`` cuts the file to its first rows before the carve. The bundled file has 6,885
roots; the default carve (872 of them) keeps 57,549 training rows and drops 8,928 (1,779 of them
inside a ``train`` root too).

Words seen fewer than ``min_count`` times in train map to ``<unk>``. Every sequence starts with a
``<cls>`` token (so a [CLS] head and a masked mean pool see the same positions) and is padded with
``<pad>`` to the longest sequence of its batch; ``Batch.mask`` is True for real tokens. A model
that brings its own tokenizer (a pretrained Hugging Face folder) gets the sentences encoded by it
instead, with its special tokens and padding id.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
import random
from typing import Any

import torch

from framework.data.base import Batch
from framework.data.base import model_tokenizer
from framework.data.base import pad_token_id
from framework.data.text import bundled_text


SST2_SHA256 = {
    "train": "48eac26399f8456935f81dd9e3a745c1430adb6c62e233ccfe22db4a0d15d1d1",
    "dev": "54a9c12c77e402fc14d6a66a506f24d999f596b0176eb777c972cccc2f9cc4b0",
}
PAD, UNK, CLS = "<pad>", "<unk>", "<cls>"
Example = tuple[list[str], int]
"""A row: its words and its label."""


def parse_labelled(text: str, source: str = "text") -> list[tuple[list[str], int]]:
    """``(words, label)`` pairs from ``sentence<TAB>label`` lines after a header line.

    Raises:
        ValueError: on a line without exactly one tab or with a non-integer label.
    """
    examples = []
    lines = text.splitlines()
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[1].strip().lstrip("-").isdigit():
            raise ValueError(f"{source}, line {number}: expected 'sentence<TAB>label', "
                             f"got {line[:80]!r}")
        examples.append((parts[0].split(), int(parts[1])))
    return examples


def read_labelled(path: str | Path) -> list[tuple[list[str], int]]:
    """Read a labelled file in the SST-2 format (``sentence<TAB>label`` with a header)."""
    return parse_labelled(Path(path).read_text(encoding="utf-8"), str(path))


def phrase_roots(phrases: list[list[str]]) -> list[list[int]]:
    """For each of ``phrases`` (distinct token lists), the indices of the roots containing it.

    A root is a phrase that no other phrase contains (as a contiguous run of its tokens); it is
    its own only root. Only roots are searched, longest first: a phrase inside another is inside
    that one's roots (which are longer, so searched already), and so is everything it contains.
    Each root's contiguous runs are looked up in a dict of the phrases, so the cost is the sum of
    the roots' squared lengths, not the square of the number of rows.
    """
    index = {" ".join(words): i for i, words in enumerate(phrases)}
    roots: list[list[int]] = [[] for _ in phrases]
    for root in sorted(range(len(phrases)), key=lambda i: -len(phrases[i])):
        if roots[root]:  # inside a longer phrase's roots: no root
            continue
        roots[root].append(root)
        words = phrases[root]
        inside = set()
        for start in range(len(words)):
            run = words[start]
            for end in range(start + 1, len(words) + 1):
                if end > start + 1:
                    run = f"{run} {words[end - 1]}"
                found = index.get(run)
                if found is not None:
                    inside.add(found)
        inside.discard(root)
        for phrase in inside:
            roots[phrase].append(root)
    return roots


def carve_val(examples: list[Example], val_size: int, seed: int
              ) -> tuple[list[Example], list[Example], int]:
    """``(train, val, dropped)``: ``val_size`` root phrases of ``examples`` (drawn with ``seed``)
    as ``val``, the rows inside no ``val`` root as ``train``, and the number of rows in neither
    (see the module's docstring). Both keep the file's order.

    Raises:
        ValueError: the rows have no more roots than ``val_size``, so no row is left to train on.
    """
    index: dict[str, int] = {}
    phrases: list[list[str]] = []
    of_row = []
    for words, _ in examples:
        key = " ".join(words)
        if key not in index:
            index[key] = len(phrases)
            phrases.append(words)
        of_row.append(index[key])
    roots = phrase_roots(phrases)
    candidates = [i for i, containing in enumerate(roots) if containing == [i]]
    if val_size >= len(candidates):
        raise ValueError(f"the {len(examples):,} training rows hold {len(candidates):,} root "
                         f"sentences (rows no other row contains); val_size {val_size:,} leaves "
                         "none to train on (use a smaller data.val_size or more rows)")
    val_roots = set(random.Random(seed).sample(candidates, val_size))
    train, val = [], []
    for example, phrase in zip(examples, of_row, strict=True):
        if phrase in val_roots:
            val.append(example)
        elif val_roots.isdisjoint(roots[phrase]):
            train.append(example)
    return train, val, len(examples) - len(train) - len(val)


class SST2:
    """SST-2 (or any file pair of its format) as word-id sequences with padding masks: ``val``
    carved from the training file, ``test`` the dev file (scored once)."""

    final_splits = ("test",)

    def __init__(self, spec: Any, model: Any):
        rows = (read_labelled(spec.train_path) if spec.train_path else
                parse_labelled(bundled_text("sst2_train.tsv.gz", SST2_SHA256["train"])))
        test = (read_labelled(spec.test_path) if spec.test_path else
                parse_labelled(bundled_text("sst2_dev.tsv.gz", SST2_SHA256["dev"])))
        if spec.train_examples is not None:
            rows = rows[:spec.train_examples]
        train, val, dropped = carve_val(rows, spec.val_size, spec.split_seed)
        self.max_len = spec.max_len or model.block_size
        self.tokenizer = model_tokenizer(model)
        if self.tokenizer is None:
            counts = Counter(word for words, _ in train for word in words)
            # Most frequent first, ties by spelling, so the vocabulary is the same on every build.
            kept = sorted((w for w, c in counts.items() if c >= spec.min_count),
                          key=lambda w: (-counts[w], w))
            self.itos = [PAD, UNK, CLS, *kept]
            self.stoi = {w: i for i, w in enumerate(self.itos)}
        labels = sorted({label for _, label in train})
        if labels != list(range(len(labels))) or len(labels) < 2:
            raise ValueError(f"labels must be 0..K-1 with K >= 2, got {labels}")
        self.pad_id = 0 if self.tokenizer is None else pad_token_id(self.tokenizer)
        vocab_size = len(self.itos) if self.tokenizer is None else len(self.tokenizer)
        self.info = {"vocab_size": vocab_size, "num_classes": len(labels), "pad_id": self.pad_id,
                     "train_size": len(train), "dropped_rows": dropped}
        self.splits = {"train": self.encode(train), "val": self.encode(val),
                       "test": self.encode(test)}

    def encode(self, examples: list[tuple[list[str], int]]) -> tuple[list[torch.Tensor],
                                                                     torch.Tensor]:
        """Token-id tensors (``<cls>`` first, or the tokenizer's special tokens; truncated to
        ``max_len``) and the labels."""
        labels = torch.tensor([label for _, label in examples], dtype=torch.long)
        if self.tokenizer is not None:
            rows = self.tokenizer([" ".join(words) for words, _ in examples], truncation=True,
                                  max_length=self.max_len)["input_ids"]
            return [torch.tensor(row, dtype=torch.long) for row in rows], labels
        unk = self.stoi[UNK]
        seqs = [torch.tensor([self.stoi[CLS], *(self.stoi.get(w, unk) for w in words)]
                             [:self.max_len], dtype=torch.long) for words, _ in examples]
        return seqs, labels

    @staticmethod
    def collate(seqs: list[torch.Tensor], labels: torch.Tensor, pad_id: int = 0) -> Batch:
        """Pad to the longest sequence with ``pad_id``; the mask is True for real tokens."""
        length = max(len(s) for s in seqs)
        inputs = torch.full((len(seqs), length), pad_id, dtype=torch.long)
        mask = torch.zeros(len(seqs), length, dtype=torch.bool)
        for row, seq in enumerate(seqs):
            inputs[row, :len(seq)] = seq
            mask[row, :len(seq)] = True
        return Batch(inputs, labels, mask)

    def _batch(self, split: str, index: torch.Tensor) -> Batch:
        seqs, labels = self.splits[split]
        return self.collate([seqs[i] for i in index.tolist()], labels[index], self.pad_id)

    def train_batch(self, batch_size: int, generator: torch.Generator) -> Batch:
        n = len(self.splits["train"][1])
        return self._batch("train", torch.randint(n, (batch_size,), generator=generator))

    def eval_batches(self, split: str, batch_size: int, n_batches: int) -> Iterator[Batch]:
        """The whole ``val`` or ``test`` split, or ``n_batches`` fixed random batches of train.

        A whole split is cut into batches whose sizes differ by at most one, so the mean of the
        batch means that evaluation reports is the split's accuracy to within rounding.
        """
        n = len(self.splits[split][1])
        if split == "train":
            generator = torch.Generator().manual_seed(1234)
            for _ in range(n_batches):
                yield self._batch(split, torch.randint(n, (batch_size,), generator=generator))
            return
        for index in torch.arange(n).tensor_split(-(-n // batch_size)):
            yield self._batch(split, index)

    def labelled_batches(self, path: str | Path, batch_size: int) -> Iterator[Batch]:
        """Batches of another labelled file of the same format, in file order."""
        seqs, labels = self.encode(read_labelled(path))
        for start in range(0, len(seqs), batch_size):
            yield self.collate(seqs[start:start + batch_size], labels[start:start + batch_size],
                               self.pad_id)

    def export(self) -> dict[str, Any]:
        """What reading labelled files needs without the training data (see :meth:`restore`):
        the word vocabulary (None with a model's own tokenizer) and the longest sequence."""
        return {"itos": None if self.tokenizer is not None else list(self.itos),
                "max_len": self.max_len}

    @classmethod
    def restore(cls, exported: dict[str, Any], info: dict[str, Any], model: Any) -> SST2:
        """A reader of labelled files (``labelled_batches``) from :meth:`export`'s output and
        the dataset's ``info``, as a checkpoint stores them: it reads neither the training nor
        the test file, and has no splits to train on."""
        reader = cls.__new__(cls)  # not __init__: that builds the vocabulary from the data
        reader.max_len = int(exported["max_len"])
        reader.tokenizer = model_tokenizer(model) if exported["itos"] is None else None
        if reader.tokenizer is None:
            reader.itos = list(exported["itos"])
            reader.stoi = {w: i for i, w in enumerate(reader.itos)}
        reader.pad_id = int(info["pad_id"])
        reader.info = dict(info)
        reader.splits = {}
        return reader

    def metrics(self, out: Any, batch: Batch) -> dict[str, float]:
        """Accuracy of the arg-max class."""
        return {"accuracy": (out.logits.argmax(-1) == batch.targets).float().mean().item()}
