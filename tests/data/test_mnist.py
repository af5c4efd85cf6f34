import gzip
import hashlib
from pathlib import Path
import urllib.error

import numpy as np
import pytest
import torch

from framework.data import mnist
from framework.data.mnist import MNIST
from framework.data.mnist import MNISTUnavailable
from framework.data.mnist import read_idx
from framework.data.mnist import write_idx
from framework.data.specs import MNISTSpec
from framework.errors import SpecError


def write_mnist(folder: Path, n_train: int = 30, n_test: int = 10, gz: bool = True) -> dict:
    """Small IDX files with MNIST's names and layout; returns the arrays written."""
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        write_idx(folder / (f"{name}.gz" if gz else name), array)
    return arrays


@pytest.mark.parametrize("gz", [True, False])
def test_reads_a_folder_of_idx_files(tmp_path: Path, gz: bool) -> None:
    arrays = write_mnist(tmp_path, gz=gz)
    data = MNIST(MNISTSpec(path=str(tmp_path), download=False, val_size=5), None)
    assert data.info == {"input_dim": 784, "input_shape": (28, 28), "num_classes": 10,
                         "train_size": 25}
    train_x, train_y = data.splits["train"]
    assert train_x.shape == (25, 28, 28) and train_x.dtype == torch.float32
    assert torch.equal(train_y, torch.tensor(arrays["train-labels-idx1-ubyte"][:25]).long())
    assert torch.equal(data.splits["val"][1],
                       torch.tensor(arrays["train-labels-idx1-ubyte"][25:]).long())
    expected = torch.tensor(arrays["t10k-images-idx3-ubyte"]).float() / 255
    assert torch.allclose(data.splits["test"][0], expected)
    assert data.final_splits == ("test",)


def test_idx_header_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "x-idx1-ubyte"
    write_idx(path, np.arange(5, dtype=np.uint8))
    assert read_idx(path).tolist() == [0, 1, 2, 3, 4]
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(ValueError, match="header declares shape"):
        read_idx(path)
    path.write_bytes(b"PK\x03\x04rest")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(path)


def test_offline_error_names_the_folder_and_the_files(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(url, timeout):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(mnist.urllib.request, "urlopen", offline)
    folder = tmp_path / "mnist"
    monkeypatch.setattr(mnist, "DEFAULT_FOLDER", folder)  # only the default cache downloads
    with pytest.raises(MNISTUnavailable) as error:
        MNIST(MNISTSpec(), None)
    message = str(error.value)
    assert str(folder) in message and "no network" in message
    assert all(f"{name}.gz" in message for name in mnist.FILES)
    with pytest.raises(MNISTUnavailable, match="download is off"):
        MNIST(MNISTSpec(download=False), None)


def test_an_explicit_path_is_only_read_never_downloaded_into(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_download(url, timeout):
        raise AssertionError(f"downloaded {url} into a folder the study named")

    monkeypatch.setattr(mnist.urllib.request, "urlopen", no_download)
    write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    spec = MNISTSpec(path=str(tmp_path), val_size=5)  # download stays on: it must not matter
    with pytest.raises(MNISTUnavailable) as error:
        MNIST(spec, None)
    message = str(error.value)
    assert f"missing from {tmp_path}: t10k-labels-idx1-ubyte (" in message
    assert "never downloaded into" in message
    with pytest.raises(SpecError) as checked:  # the same, when the study is validated
        spec.check(None)
    assert checked.value.key == "data.path" and checked.value.message == message
    assert not (tmp_path / "t10k-labels-idx1-ubyte.gz").exists()


def test_download_keeps_only_files_with_the_published_checksum(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "source"
    write_mnist(source)
    payloads = {name: (source / f"{name}.gz").read_bytes() for name in mnist.FILES}
    monkeypatch.setattr(mnist, "SHA256", {n: hashlib.sha256(p).hexdigest()
                                          for n, p in payloads.items()})
    served = []

    class Response:
        def __init__(self, payload: bytes):
            self.payload = payload

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self) -> bytes:
            return self.payload

    def fake_urlopen(url, timeout):
        served.append(url)
        name = url.rsplit("/", 1)[1].removesuffix(".gz")
        if url.startswith(mnist.MIRRORS[0]):  # the first mirror serves a corrupt file
            return Response(gzip.compress(b"corrupt"))
        return Response(payloads[name])

    monkeypatch.setattr(mnist.urllib.request, "urlopen", fake_urlopen)
    folder = tmp_path / "cache"
    monkeypatch.setattr(mnist, "DEFAULT_FOLDER", folder)
    data = MNIST(MNISTSpec(val_size=5), None)
    assert len(data.splits["test"][1]) == 10
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{n}.gz" for n in mnist.FILES)
    assert sum(url.startswith(mnist.MIRRORS[1]) for url in served) == 4
    served.clear()
    MNIST(MNISTSpec(val_size=5), None)
    assert served == [], "files already in the folder are not downloaded again"


def test_mismatched_counts_are_an_error(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(9, dtype=np.uint8))
    with pytest.raises(ValueError, match="do not match"):
        MNIST(MNISTSpec(path=str(tmp_path), download=False, val_size=5), None)
