"""Character-level language modelling on a text file (Tiny Shakespeare by default).

The bundled file is the char-rnn Tiny Shakespeare (Karpathy 2015; public domain), gzip-compressed
and checked against its published SHA-256. Split 90/10 into train and val, as nanoGPT's
``shakespeare_char``; 65 distinct characters.
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


class CharText:
    """Random windows of characters; targets are the inputs shifted by one."""

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
        n_train = int(len(data) * (1 - spec.val_fraction))
        train = leading_fraction(data[:n_train], spec.train_fraction)
        self.splits = {"train": train, "val": data[n_train:]}
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
        generator = torch.Generator().manual_seed(1234)
        for _ in range(n_batches):
            yield self._windows(split, batch_size, generator)
