"""Character streams for truncated BPTT: contiguous windows, warmed-up evaluation, metrics."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import torch

from framework.data.charstream import CharStream
from framework.data.specs import CharStreamSpec


def make(tmp_path: Path, warmup: int = 3) -> CharStream:
    text = "".join(chr(97 + (i * 7) % 26) for i in range(2000))
    path = tmp_path / "text.txt"
    path.write_text(text)
    spec = CharStreamSpec(path=str(path), eval_warmup=warmup, held_out_fraction=0.2)
    return CharStream(spec, SimpleNamespace(block_size=5))


def test_training_windows_continue_each_stream_and_restart_per_trial(tmp_path: Path) -> None:
    data = make(tmp_path)
    gen = torch.Generator().manual_seed(0)
    a, b = data.train_batch(4, gen), data.train_batch(4, gen)
    assert torch.equal(b.inputs[:, 0], a.targets[:, -1])
    assert torch.equal(a.targets[:, :-1], a.inputs[:, 1:])
    # each row is its own stream: row 1 starts a quarter of the text after row 0
    streams = data.streams(data.splits["train"], 4)
    start = next(c for c in range(5) if torch.equal(streams[0, c : c + 5], a.inputs[0]))
    assert torch.equal(a.inputs, streams[:, start : start + 5])
    again = data.train_batch(4, torch.Generator().manual_seed(0))  # a new trial, same seed
    assert torch.equal(again.inputs, a.inputs)


def test_eval_windows_ignore_the_warm_up_and_tile_the_split(tmp_path: Path) -> None:
    data = make(tmp_path, warmup=3)
    batches = list(data.eval_batches("val", 2, 3))
    assert len(batches) == 3
    assert (batches[0].targets != -100).all()  # nothing to warm up on before the start
    second = batches[1]
    assert second.inputs.shape == (2, 8) and (second.targets[:, :3] == -100).all()
    scored = torch.cat([b.targets[b.targets != -100].view(2, -1) for b in batches], dim=1)
    stream = data.streams(data.splits["val"], 2)
    assert torch.equal(scored, stream[:, 1:16])  # every target once, in order
    out = SimpleNamespace(loss=torch.tensor(math.log(4.0)))
    metrics = data.metrics(out, second)
    assert abs(metrics["bpc"] - 2.0) < 1e-6 and abs(metrics["ppl"] - 4.0) < 1e-6


def test_test_evaluation_reads_every_whole_window_of_the_streams(tmp_path: Path) -> None:
    data = make(tmp_path, warmup=3)
    assert data.final_splits == ("test",)
    assert len(data.splits["val"]) == len(data.splits["test"]) == 200  # halves of the last 0.2
    batches = list(data.eval_batches("test", 2, n_batches=3))  # n_batches does not apply
    stream = data.streams(data.splits["test"], 2)  # 2 streams of 100: 19 whole windows of 5
    assert len(batches) == 19 and all((b.targets[:, :3] == -100).all() for b in batches[1:])
    scored = torch.cat([b.targets[b.targets != -100].view(2, -1) for b in batches], dim=1)
    assert torch.equal(scored, stream[:, 1:96])  # every target once, in order
    assert len(list(data.eval_batches("val", 2, n_batches=3))) == 3
