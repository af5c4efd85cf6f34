"""Character-level language modelling on a text file (Tiny Shakespeare by default).

The bundled file is the char-rnn Tiny Shakespeare (Karpathy 2015; public domain), gzip-compressed
and checked against its published SHA-256. Split 90/10 into train and val, as nanoGPT's
``shakespeare_char``; 65 distinct characters.
"""

from __future__ import annotations

from collections.abc import Iterator
import gzip
import hashlib
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from framework.data.base import Batch


TINY_SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"


def bundled_text(filename: str, sha256: str) -> str:
    """A compressed text file shipped in ``framework/data/files``, checked against ``sha256``."""
    packaged = resources.files("framework.data").joinpath("files", filename)
    raw = gzip.decompress(packaged.read_bytes())
    digest = hashlib.sha256(raw).hexdigest()
    if digest != sha256:
        raise RuntimeError(f"bundled {filename} is corrupt: sha256 {digest}, expected {sha256}")
    return raw.decode("utf-8")


class CharText:
    """Random windows of characters; targets are the inputs shifted by one."""

    def __init__(self, spec: Any, model: Any):
        if spec.path is None:
            text = bundled_text("tinyshakespeare.txt.gz", TINY_SHAKESPEARE_SHA256)
        else:
            text = Path(spec.path).read_text(encoding="utf-8")
        self.chars = sorted(set(text))
        self.stoi = {c: i for i, c in enumerate(self.chars)}
        data = torch.tensor([self.stoi[c] for c in text], dtype=torch.long)
        n_train = int(len(data) * (1 - spec.val_fraction))
        self.splits = {"train": data[:n_train], "val": data[n_train:]}
        self.block_size = spec.block_size or model.block_size
        self.info = {"vocab_size": len(self.chars)}
        for name, split in self.splits.items():
            if len(split) <= self.block_size + 1:
                raise ValueError(f"{name} split has {len(split)} characters, too few for "
                                 f"windows of {self.block_size}")

    def encode(self, text: str) -> torch.Tensor:
        return torch.tensor([self.stoi[c] for c in text], dtype=torch.long)

    def decode(self, ids: torch.Tensor) -> str:
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
