"""The data files, without torch: bundled texts, their sizes, and which files a folder holds.

Shared by the dataset loaders (which import torch) and by the dataset configs' checks, which run
when a study is validated and must stay light.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
import gzip
import hashlib
from importlib import resources
from pathlib import Path


TINY_SHAKESPEARE = "tinyshakespeare.txt.gz"
TINY_SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
"""MNIST's four IDX files, each found plain or as ``<name>.gz``."""
MNIST_DEFAULT_FOLDER = Path("~/.cache/dropout-lab/mnist")
"""The only folder MNIST is downloaded into (when the study gives no ``data.path``)."""
WORD_SPLITS = ("train", "valid", "test")
WORD_CORPUS_FILES = {
    "ptb": {s: f"ptb.{s}.txt" for s in WORD_SPLITS},
    "wikitext2": {s: f"wiki.{s}.tokens" for s in WORD_SPLITS},
}
"""The file of each split of the word-level corpora, as their archives name them."""


def held_out_cuts(length: int, held_out_fraction: float) -> tuple[int, int]:
    """Where a text of ``length`` tokens is cut: ``(end of train, end of val)``.

    The last ``held_out_fraction`` is held out (nanoGPT's 90/10) and halved: ``val`` is its first
    half, ``test`` its second (one token longer when the held-out part is odd). The loaders and
    the configs' checks both cut here, so a check measures the splits the loader will make.
    """
    n_train = int(length * (1 - held_out_fraction))
    return n_train, n_train + (length - n_train) // 2


def bundled_text(filename: str, sha256: str) -> str:
    """A compressed text file shipped in ``framework/data/files``, checked against ``sha256``."""
    packaged = resources.files("framework.data").joinpath("files", filename)
    raw = gzip.decompress(packaged.read_bytes())
    digest = hashlib.sha256(raw).hexdigest()
    if digest != sha256:
        raise RuntimeError(f"bundled {filename} is corrupt: sha256 {digest}, expected {sha256}")
    return raw.decode("utf-8")


@dataclass(frozen=True)
class TextStats:
    """What a character-level dataset's validation needs to know about its text."""

    characters: int
    distinct: int


def text_stats(path: str | None) -> TextStats:
    """Length and alphabet size of the text at ``path`` (None: the bundled Tiny Shakespeare).

    Raises:
        OSError: the file cannot be read.
        UnicodeDecodeError: it is not UTF-8 text.
    """
    if path is None:
        return _stats(None, 0, 0)
    stat = Path(path).stat()
    # Keyed by size and mtime too: a file rewritten in a long-lived process is read again.
    return _stats(str(path), stat.st_size, stat.st_mtime_ns)


@cache
def _stats(path: str | None, _size: int, _mtime_ns: int) -> TextStats:
    if path is None:
        text = bundled_text(TINY_SHAKESPEARE, TINY_SHAKESPEARE_SHA256)
    else:
        text = Path(path).read_text(encoding="utf-8")
    return TextStats(characters=len(text), distinct=len(set(text)))


def find_present(folder: Path, names: tuple[str, ...], gz: bool = False) -> dict[str, Path]:
    """The files of ``names`` that ``folder`` holds (each also as ``<name>.gz`` if ``gz``)."""
    found: dict[str, Path] = {}
    for name in names:
        candidates = (folder / name, folder / f"{name}.gz") if gz else (folder / name,)
        for candidate in candidates:
            if candidate.is_file():
                found[name] = candidate
                break
    return found


def mnist_folder_lacks(folder: Path) -> str | None:
    """What a folder given as MNIST's ``data.path`` lacks (it is only read), or None."""
    found = find_present(folder, MNIST_FILES, gz=True)
    missing = [name for name in MNIST_FILES if name not in found]
    if not missing:
        return None
    return (f"MNIST files missing from {folder}: {', '.join(missing)} (a folder given as "
            "`data.path` is only read, never downloaded into); put the four IDX files there "
            f"(plain or .gz), or leave `data.path` out to download them into "
            f"{MNIST_DEFAULT_FOLDER}")
