"""Contiguous token streams for recurrent language models trained with truncated BPTT.

The text is cut into ``batch_size`` parallel streams; training batches are consecutive windows of
every stream, so the state a recurrent model carries from one batch to the next is the state of
the text just before the window (Zaremba, Sutskever & Vinyals 2014; Merity et al. 2018). Each
trial's first batch starts at an offset drawn from the trial's generator, so trials with the same
seed see the same windows even though the dataset object is reused across the trials of a process.

Evaluation windows are consecutive too, from the start of the split. Each starts ``eval_warmup``
tokens early and those targets are ignored (-100), so the model, which evaluates from a zero
state, is scored with a warmed-up state. ``val``, evaluated many times during training, is read
for ``n_batches`` windows; ``test``, scored once on the best checkpoint, is read whole (every
whole window of its streams). Metrics: bits per token and perplexity (``exp`` of the mean loss of
a window; the loop averages it over windows).

The character streams cut their text as :class:`framework.data.text.CharText` does: the first
90 % is ``train``, the last 10 % is held out and halved into ``val`` and ``test``.
"""

from __future__ import annotations

from collections.abc import Iterator
import math
from pathlib import Path
from typing import Any

import torch

from framework.data.base import Batch
from framework.data.base import leading_fraction
from framework.data.sources import held_out_cuts
from framework.data.text import TINY_SHAKESPEARE_SHA256
from framework.data.text import bundled_text


IGNORE = -100  # F.cross_entropy's default ignore_index


class TokenStreams:
    """Train, val and test id sequences served as contiguous streams; subclasses fill
    ``splits``."""

    splits: dict[str, torch.Tensor]
    info: dict[str, Any]

    def __init__(self, block_size: int, eval_warmup: int):
        self.block_size = block_size
        self.eval_warmup = eval_warmup
        self._generator: torch.Generator | None = None
        self._cursor = 0
        self._streams: torch.Tensor | None = None

    def _check(self) -> None:
        for name, split in self.splits.items():
            if len(split) <= self.block_size + 1:
                raise ValueError(f"{name} split has {len(split)} tokens, too few for "
                                 f"windows of {self.block_size}")

    @staticmethod
    def streams(data: torch.Tensor, batch_size: int) -> torch.Tensor:
        """``data`` cut into ``batch_size`` equal contiguous rows (the tail is dropped)."""
        n = len(data) // batch_size
        if n < 2:
            raise ValueError(f"{len(data)} tokens cannot make {batch_size} streams")
        return data[: n * batch_size].view(batch_size, n)

    def train_batch(self, batch_size: int, generator: torch.Generator) -> Batch:
        T = self.block_size
        if self._streams is None or self._streams.size(0) != batch_size:
            self._streams = self.streams(self.splits["train"], batch_size)
            self._generator = None
        n = self._streams.size(1)
        if generator is not self._generator:  # a new trial: start where its seed says
            self._generator = generator
            self._cursor = int(torch.randint(min(T, n - 1), (1,), generator=generator))
        if self._cursor + T + 1 > n:  # wrap around; the carried state just continues
            self._cursor = 0
        T = min(T, n - 1 - self._cursor)
        window = self._streams[:, self._cursor : self._cursor + T + 1]
        self._cursor += T
        return Batch(window[:, :-1], window[:, 1:])

    def eval_batches(self, split: str, batch_size: int, n_batches: int) -> Iterator[Batch]:
        """The first ``n_batches`` windows of ``split``'s streams; every whole window of
        ``test``'s (scored once, so it can afford the whole split)."""
        streams = self.streams(self.splits[split], batch_size)
        T, W = self.block_size, self.eval_warmup
        n = streams.size(1)
        if n < T + 1:
            raise ValueError(f"{split} split is too short for {batch_size} streams of windows "
                             f"of {T} tokens")
        windows = (n - 1) // T  # whole windows whose targets are in the streams
        for j in range(windows if split == "test" else min(n_batches, windows)):
            end = (j + 1) * T  # scored targets: streams[:, j*T+1 : end+1]
            start = max(0, j * T - W)
            window = streams[:, start : end + 1]
            targets = window[:, 1:].clone()
            targets[:, : j * T - start] = IGNORE
            yield Batch(window[:, :-1], targets)

    def metrics(self, out: Any, batch: Batch) -> dict[str, float]:
        loss = float(out.loss)
        return {"bpc": loss / math.log(2), "ppl": math.exp(loss)}


class CharStream(TokenStreams):
    """Characters of Tiny Shakespeare (bundled, char-rnn) or any text file; 90/10 split, the
    held-out 10 % halved into ``val`` and ``test`` (scored once)."""

    final_splits = ("test",)

    def __init__(self, spec: Any, model: Any):
        super().__init__(spec.block_size or model.block_size, spec.eval_warmup)
        if spec.path is None:
            text = bundled_text("tinyshakespeare.txt.gz", TINY_SHAKESPEARE_SHA256)
        else:
            text = Path(spec.path).read_text(encoding="utf-8")
        self.chars = sorted(set(text))
        stoi = {c: i for i, c in enumerate(self.chars)}
        data = torch.tensor([stoi[c] for c in text], dtype=torch.long)
        n_train, n_val = held_out_cuts(len(data), spec.held_out_fraction)
        train = leading_fraction(data[:n_train], spec.train_fraction)
        self.splits = {"train": train, "val": data[n_train:n_val], "test": data[n_val:]}
        self.info = {"vocab_size": len(self.chars), "train_size": len(train)}  # tokens
        self._check()
