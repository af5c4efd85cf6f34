"""What data a trial trained on, for the record: a name, where it was read from, and SHA-256s.

The digests are those the loaders check: the published SHA-256 of a bundled file's content, and
for files read from a path (a user's text, the MNIST or word-corpus folders) the SHA-256 of the
bytes on disk, computed once per file version in a process. A dataset from a plugin is described
by its config alone (its files are its own business).
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from functools import cache
import hashlib
from importlib import resources
import json
from pathlib import Path
from typing import Any


BUNDLED = resources.files("framework.data").joinpath("files")


@dataclass(frozen=True)
class DataRecord:
    """One dataset as MLflow records it: name, source and content digest."""

    name: str
    source: str
    """The file or folder read (for bundled data, the packaged file)."""
    sha256: str
    """The file's SHA-256; for several files, that of their ``<sha256>  <name>`` lines."""
    files: dict[str, str] = field(default_factory=dict)
    """SHA-256 of each file read, by name."""


def describe(data: Any) -> DataRecord:
    """The record of the dataset a study's ``data`` section names.

    Raises:
        OSError: a file the dataset reads cannot be read (training would fail on it too).
    """
    located = _locate(data)
    if located is None:
        config = json.dumps(data.model_dump(mode="json"), sort_keys=True)
        return DataRecord(data.name, f"config {config}", _sha256(config.encode()))
    source, files = located
    digests = {name: digest if isinstance(digest, str) else file_sha256(digest)
               for name, digest in files.items()}
    if len(digests) == 1:
        overall = next(iter(digests.values()))
    else:
        lines = "".join(f"{digests[name]}  {name}\n" for name in sorted(digests))
        overall = _sha256(lines.encode())
    return DataRecord(data.name, str(source), overall, digests)


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes (cached while its size and modification time stay the same)."""
    stat = path.stat()
    return _file_sha256(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@cache
def _file_sha256(path: str, _size: int, _mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _locate(data: Any) -> tuple[Path | str, dict[str, str | Path]] | None:
    """Where the built-in datasets read from: ``(source, {file name: digest or path})``."""
    from framework.data import sources

    name = data.name
    if name in ("shakespeare_char", "char_stream"):
        if data.path is None:
            return (str(BUNDLED.joinpath(sources.TINY_SHAKESPEARE)),
                    {"tinyshakespeare.txt": sources.TINY_SHAKESPEARE_SHA256})
        path = Path(data.path).expanduser()
        return path, {path.name: path}
    if name == "sst2":
        return _sst2(data)
    if name == "digits":
        packaged = resources.files("sklearn.datasets.data").joinpath("digits.csv.gz")
        return str(packaged), {"digits.csv.gz": Path(str(packaged))}
    if name == "mnist":
        folder = Path(data.path or sources.MNIST_DEFAULT_FOLDER).expanduser()
        found = sources.find_present(folder, sources.MNIST_FILES, gz=True)
        return folder, {path.name: path for path in found.values()}
    if name in sources.WORD_CORPUS_FILES:
        folder = (Path(data.path) if data.path else Path(data.cache) / name).expanduser()
        files = sources.WORD_CORPUS_FILES[name].values()
        return folder, {file: folder / file for file in files}
    return None


def _sst2(data: Any) -> tuple[Path | str, dict[str, str | Path]]:
    from framework.data.sst2 import SST2_SHA256

    files: dict[str, str | Path] = {}
    # GLUE's dev file is the test split; val is carved from the training file.
    for split, given in (("train", data.train_path), ("dev", data.test_path)):
        if given:
            path = Path(given).expanduser()
            files[path.name] = path
        else:
            files[f"sst2_{split}.tsv"] = SST2_SHA256[split]
    paths = [p for p in files.values() if isinstance(p, Path)]
    return (paths[0].parent if paths else str(BUNDLED)), files
