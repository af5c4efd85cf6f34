"""Word-level PTB / WikiText-2 loaders on small files the tests write; never the network."""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import SimpleNamespace
import urllib.error
import zipfile

import pytest
import torch

from framework.data import wordlm
from framework.data.specs import PTBSpec
from framework.data.specs import WikiText2Spec


LINES = ["the cat sat on the mat", "a dog <unk> the cat", "", "the end"]


def write_corpus(folder: Path, names: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for split, name in names.items():
        # valid/test hold a word train never saw: it must map to <unk>
        extra = [] if split == "train" else ["zebra the cat"]
        (folder / name).write_text("\n".join(LINES * 4 + extra) + "\n")


def model(block_size: int = 4) -> SimpleNamespace:
    return SimpleNamespace(block_size=block_size)


def test_reads_a_local_ptb_folder_as_contiguous_streams(tmp_path: Path) -> None:
    write_corpus(tmp_path, wordlm.FILES["ptb"])
    data = wordlm.WordLM(PTBSpec(path=str(tmp_path)), model())
    vocab = data.vocab
    assert "zebra" not in vocab and {"<eos>", "<unk>", "cat"} <= set(vocab)
    assert data.info == {"vocab_size": len(vocab), "train_size": len(data.splits["train"])}
    words = [vocab[i] for i in data.splits["train"][:7].tolist()]
    assert words == ["the", "cat", "sat", "on", "the", "mat", "<eos>"]
    assert vocab[int(data.splits["val"][-4])] == "<unk>"  # zebra
    gen = torch.Generator().manual_seed(0)
    first, second = data.train_batch(2, gen), data.train_batch(2, gen)
    # consecutive windows: the second starts where the first's targets end
    assert torch.equal(second.inputs[:, 0], first.targets[:, -1])
    assert data.final_splits == ("test",)
    # test is read whole (2 streams of 34 words: 8 windows of 4), whatever n_batches says
    scored = torch.cat([b.targets for b in data.eval_batches("test", 2, n_batches=1)], dim=1)
    assert torch.equal(scored, data.streams(data.splits["test"], 2)[:, 1:33])


def test_wikitext_archive_is_downloaded_checked_and_unpacked(tmp_path, monkeypatch) -> None:
    source = tmp_path / "src"
    write_corpus(source / "wikitext-2", wordlm.FILES["wikitext2"])
    archive = tmp_path / "wikitext-2-v1.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for name in wordlm.FILES["wikitext2"].values():
            z.write(source / "wikitext-2" / name, f"wikitext-2/{name}")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    sources = {"wikitext2": [(archive.as_uri(), "wikitext-2-v1.zip", f"sha256:{digest}")]}
    monkeypatch.setattr(wordlm, "SOURCES", sources)
    monkeypatch.setattr(wordlm.fetch, "__defaults__", (sources,))
    data = wordlm.WordLM(WikiText2Spec(cache=str(tmp_path / "cache")), model())
    assert (tmp_path / "cache" / "wikitext2" / "wiki.valid.tokens").exists()
    assert len(data.splits["test"]) > 0
    bad = {"wikitext2": [(archive.as_uri(), "wikitext-2-v1.zip", "sha256:" + "0" * 64)]}
    with pytest.raises(wordlm.DownloadError, match="checksum"):
        wordlm.fetch("wikitext2", tmp_path / "other", bad)
    assert not list((tmp_path / "other" / "wikitext2").iterdir())  # nothing half-written


def test_offline_fails_clearly_and_names_the_way_out(tmp_path, monkeypatch) -> None:
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(wordlm.urllib.request, "urlopen", offline)
    with pytest.raises(wordlm.DownloadError, match="data.path"):
        wordlm.WordLM(PTBSpec(cache=str(tmp_path)), model())
    with pytest.raises(FileNotFoundError, match="ptb.valid.txt"):
        (tmp_path / "ptb_local").mkdir()
        (tmp_path / "ptb_local" / "ptb.train.txt").write_text("a b\n")
        wordlm.WordLM(PTBSpec(path=str(tmp_path / "ptb_local")), model())
