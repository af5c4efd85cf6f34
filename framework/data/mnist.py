"""MNIST (LeCun, Bottou, Bengio & Haffner 1998) from its four IDX files.

The files are read from a folder (``path``, default ``~/.cache/dropout-lab/mnist``), each either
plain or gzip-compressed (``.gz``). A folder given as ``path`` is only read: missing files there
are an error naming them (found when the study is validated). Only the default cache is filled
by downloading, from the usual mirrors when ``download`` is on, and each download is checked
against the SHA-256 of the published ``.gz`` file before it is kept; without a network the error
names the folder and the files to put there.
Files already in the folder are checked for their IDX structure (magic number, shape, matching
counts, label range), not their checksum, so that other copies (e.g. uncompressed) work too.

Splits: the last ``val_size`` of the 60,000 training images are the validation split (50k / 10k
as in the usual MNIST protocol); the 10,000 ``t10k`` images are the test split. Pixels scaled to
[0, 1].
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path
import struct
from typing import Any
import urllib.error
import urllib.request

import numpy as np
import torch

from framework.data.classification import ClassificationData
from framework.data.sources import MNIST_DEFAULT_FOLDER
from framework.data.sources import MNIST_FILES
from framework.data.sources import find_present
from framework.data.sources import mnist_folder_lacks


DEFAULT_FOLDER = MNIST_DEFAULT_FOLDER
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
SHA256 = {
    "train-images-idx3-ubyte": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
"""SHA-256 of the published ``<name>.gz`` files."""
FILES = MNIST_FILES

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class MNISTUnavailable(FileNotFoundError):
    """The IDX files are not in the folder and could not be downloaded."""


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (plain or ``.gz``) as an array of its declared type and shape.

    Raises:
        ValueError: the file is not IDX or its size does not match its header.
    """
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in _DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number {raw[:4].hex()})")
    ndim = raw[3]
    shape = struct.unpack(f">{ndim}I", raw[4: 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=_DTYPES[raw[2]], offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path} holds {data.size} values, its header declares shape {shape}")
    return data.reshape(shape)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write ``array`` (uint8) as an IDX file, gzip-compressed if ``path`` ends in ``.gz``."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.tobytes()
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)


def find_files(folder: Path, download: bool) -> dict[str, Path]:
    """The path of each of the four files in ``folder``, downloading the missing ones if allowed.

    Raises:
        MNISTUnavailable: with the folder and the expected file names, when some are missing.
    """
    found = find_present(folder, FILES, gz=True)
    missing = [name for name in FILES if name not in found]
    errors: list[str] = []
    if missing and download:
        folder.mkdir(parents=True, exist_ok=True)
        for name in missing:
            try:
                found[name] = _download(name, folder)
            except OSError as exc:
                errors.append(f"{name}.gz: {exc}")
    missing = [name for name in FILES if name not in found]
    if missing:
        tried = ("; download failed: " + "; ".join(errors)) if errors else (
            "" if download else " (download is off)")
        raise MNISTUnavailable(
            f"MNIST files missing from {folder}: {', '.join(missing)}{tried}. Put the four IDX "
            f"files there (plain or .gz): {', '.join(f'{n}.gz' for n in FILES)}, or set "
            "`data.path` to the folder that holds them."
        )
    return found


def _download(name: str, folder: Path) -> Path:
    """Fetch ``<name>.gz`` from the first mirror that serves a file with the right checksum."""
    problems = []
    for mirror in MIRRORS:
        url = f"{mirror}{name}.gz"
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                payload = response.read()
        except (urllib.error.URLError, OSError) as exc:
            problems.append(f"{url}: {exc}")
            continue
        digest = hashlib.sha256(payload).hexdigest()
        if digest != SHA256[name]:
            problems.append(f"{url}: sha256 {digest}, expected {SHA256[name]}")
            continue
        target = folder / f"{name}.gz"
        partial = target.with_suffix(".gz.part")
        partial.write_bytes(payload)
        partial.replace(target)  # never leave a truncated file under the final name
        return target
    raise OSError(" | ".join(problems))


class MNIST(ClassificationData):
    def __init__(self, spec: Any, model: Any):
        if spec.path:
            folder = Path(spec.path).expanduser()
            problem = mnist_folder_lacks(folder)
            if problem:
                raise MNISTUnavailable(problem)
            files = find_files(folder, download=False)
        else:
            folder = DEFAULT_FOLDER.expanduser()
            files = find_files(folder, spec.download)
        arrays = {name: read_idx(path) for name, path in files.items()}
        parts = {}
        for prefix in ("train", "t10k"):
            images = arrays[f"{prefix}-images-idx3-ubyte"]
            labels = arrays[f"{prefix}-labels-idx1-ubyte"]
            if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
                raise ValueError(f"{folder}: {prefix} images {images.shape} and labels "
                                 f"{labels.shape} do not match")
            if labels.size and labels.max() > 9:
                raise ValueError(f"{folder}: {prefix} labels must be 0..9, found {labels.max()}")
            parts[prefix] = (torch.tensor(images, dtype=torch.float32) / 255.0,
                             torch.tensor(labels, dtype=torch.long))
        train_x, train_y = parts["train"]
        if spec.val_size >= len(train_y):
            raise ValueError(f"val_size {spec.val_size} leaves no training images "
                             f"(the file holds {len(train_y)})")
        cut = len(train_y) - spec.val_size
        super().__init__({"train": (train_x[:cut], train_y[:cut]),
                          "val": (train_x[cut:], train_y[cut:]),
                          "test": parts["t10k"]}, num_classes=10)
