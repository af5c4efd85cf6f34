"""Character-level language modelling on a text file (Tiny Shakespeare by default).

The bundled file is the char-rnn Tiny Shakespeare (Karpathy 2015; public domain), gzip-compressed
and checked against its published SHA-256; 65 distinct characters. The first 90 % is ``train``
and the last 10 % is held out, as nanoGPT's ``shakespeare_char`` splits it into train and val; the
held-out part is halved: ``val`` (its first half) chooses (search, pruning, best checkpoint) and
``test`` (its second half) is scored once, on the best checkpoint.

``train`` and ``val`` are read in random windows (``val``'s the same every evaluation: it is
evaluated many times, so a few batches of it). ``test`` is read whole, once: consecutive
non-overlapping windows of ``block_size`` (the last partial one dropped), each batch row one
scored example.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from framework.data.base import Batch
from framework.data.base import leading_fraction
from framework.data.base import model_tokenizer
from framework.data.sources import TINY_SHAKESPEARE_SHA256
from framework.data.sources import bundled_text
from framework.data.sources import held_out_cuts


class CharText:
    """Windows of characters; targets are the inputs shifted by one. ``test`` is scored once."""

    final_splits = ("test",)

    def __init__(self, spec: Any, model: Any):
        if spec.path is None:
            text = bundled_text("tinyshakespeare.txt.gz", TINY_SHAKESPEARE_SHA256)
        else:
            text = Path(spec.path).read_text(encoding="utf-8")
        # A model that brings its own tokenizer (a pretrained folder's) reads its tokens instead
        # of characters; the splits and windows are then counted in those tokens.
        self.tokenizer = model_tokenizer(model)
        if self.tokenizer is None:
            self.chars = sorted(set(text))
            self.stoi = {c: i for i, c in enumerate(self.chars)}
        data = self.encode(text)
        n_train, n_val = held_out_cuts(len(data), spec.held_out_fraction)
        train = leading_fraction(data[:n_train], spec.train_fraction)
        self.splits = {"train": train, "val": data[n_train:n_val], "test": data[n_val:]}
        self.block_size = spec.block_size or model.block_size
        # train_size: the tokens the training loss averages over (Concrete dropout's N).
        vocab_size = len(self.chars) if self.tokenizer is None else len(self.tokenizer)
        self.info = {"vocab_size": vocab_size, "train_size": len(train)}
        unit = "characters" if self.tokenizer is None else "tokens"
        for name, split in self.splits.items():
            if len(split) <= self.block_size + 1:
                raise ValueError(f"{name} split has {len(split)} {unit}, too few for "
                                 f"windows of {self.block_size}")

    def encode(self, text: str) -> torch.Tensor:
        if self.tokenizer is not None:
            return torch.tensor(self.tokenizer(text, verbose=False)["input_ids"], dtype=torch.long)
        return torch.tensor([self.stoi[c] for c in text], dtype=torch.long)

    def decode(self, ids: torch.Tensor) -> str:
        if self.tokenizer is not None:
            return self.tokenizer.decode(ids.tolist())
        return "".join(self.chars[i] for i in ids.tolist())

    def _windows(self, split: str, batch_size: int, generator: torch.Generator) -> Batch:
        data = self.splits[split]
        starts = torch.randint(len(data) - self.block_size - 1, (batch_size,), generator=generator)
        offsets = torch.arange(self.block_size)
        x = data[starts[:, None] + offsets]  # (B, T)
        y = data[starts[:, None] + offsets + 1]
        return Batch(x, y)

    def train_batch(self, batch_size: int, generator: torch.Generator) -> Batch:
        return self._windows("train", batch_size, generator)

    def eval_batches(self, split: str, batch_size: int, n_batches: int) -> Iterator[Batch]:
        """``n_batches`` fixed random batches of ``train`` or ``val``; all of ``test``.

        ``test`` is cut into consecutive non-overlapping windows (the last partial one dropped),
        in batches whose sizes differ by at most one (at most ``batch_size`` rows): evaluation
        averages the batch means with equal weight, so the result is then the mean over windows
        to within rounding. ``n_batches`` does not apply to it.
        """
        if split == "test":
            yield from self._blocks(split, batch_size)
            return
        generator = torch.Generator().manual_seed(1234)
        for _ in range(n_batches):
            yield self._windows(split, batch_size, generator)

    def _blocks(self, split: str, batch_size: int) -> Iterator[Batch]:
        data, T = self.splits[split], self.block_size
        n = (len(data) - 1) // T  # whole windows whose targets are in the split too
        inputs, targets = data[: n * T].view(n, T), data[1 : n * T + 1].view(n, T)
        chunks = -(-n // batch_size)
        for x, y in zip(inputs.tensor_split(chunks), targets.tensor_split(chunks), strict=True):
            yield Batch(x, y)
