"""The record of a trial's data: the digests the loaders check, or of the bytes read."""

from __future__ import annotations

import hashlib
from pathlib import Path

from pydantic import BaseModel

from framework.data.provenance import describe
from framework.data.specs import ShakespeareCharSpec
from framework.data.specs import SST2Spec
from framework.data.sst2 import SST2_SHA256


def test_a_text_file_is_recorded_by_the_sha256_of_its_bytes(tmp_path: Path) -> None:
    path = tmp_path / "poems.txt"
    path.write_text("to be or not to be\n" * 50)
    record = describe(ShakespeareCharSpec(path=str(path)))
    assert record.source == str(path)
    assert record.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    path.write_text("changed")  # another version of the file, another digest
    assert describe(ShakespeareCharSpec(path=str(path))).sha256 != record.sha256


def test_bundled_files_are_recorded_by_the_digests_their_loader_checks() -> None:
    record = describe(SST2Spec())
    assert record.files == {"sst2_train.tsv": SST2_SHA256["train"],
                            "sst2_dev.tsv": SST2_SHA256["dev"]}
    lines = "".join(f"{record.files[n]}  {n}\n" for n in sorted(record.files))
    assert record.sha256 == hashlib.sha256(lines.encode()).hexdigest()
    assert Path(record.source).name == "files"


def test_a_plugin_dataset_is_recorded_by_its_config() -> None:
    class Custom(BaseModel):
        name: str = "custom"
        size: int = 3

    record = describe(Custom())
    assert record.name == "custom" and record.files == {}
    assert record.source == 'config {"name": "custom", "size": 3}'
