"""``docs/results/carry.sh``: a study's stores packed into the repository and put back, so that
a study longer than a working session continues in the next one (mlruns/ does not survive)."""

from __future__ import annotations

from pathlib import Path
import shutil
import subprocess
import tarfile

from framework.config import load_spec
from framework.tracking import Locations
from framework.tuning.confirm import run_confirmation
from framework.tuning.study import run_study
from tests.cli.test_cli import cli
from tests.conftest import ROOT
from tests.conftest import TINY_STUDY
from tests.conftest import write_study


CARRY = ROOT / "docs" / "results" / "carry.sh"


def carry(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(CARRY), *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_a_restored_study_confirms_and_registers_without_the_weights_left_out(
    tmp_path: Path,
) -> None:
    study = write_study(tmp_path, TINY_STUDY.format(name="carried"))
    home = tmp_path / "mlruns" / "carried"
    locations = Locations.resolve(home)
    loaded = load_spec(study)
    run_study(loaded, locations)
    run_confirmation(loaded, locations, top=1, seeds=2)
    archive = tmp_path / "docs" / "store.tar.gz"

    saved = carry("save", "mlruns/carried", archive, cwd=tmp_path)
    assert saved.returncode == 0, saved.stderr
    with tarfile.open(archive) as packed:
        names = packed.getnames()
    assert "carried/optuna.db" in names and "carried/mlflow.db" in names
    assert not [name for name in names if name.endswith(("best.pt", ".lock"))
                or "/models/" in name]

    shutil.rmtree(home)
    restored = carry("restore", "mlruns/carried", archive, cwd=tmp_path)
    assert restored.returncode == 0, restored.stderr
    again = carry("restore", "mlruns/carried", archive, cwd=tmp_path)
    assert again.returncode == 2 and "exists" in again.stderr
    # The confirmation (trained before the save) is written and its best model registered,
    # though the trial's logged model was left out of the archive; in a new process, as in the
    # next session (this one's MLflow store still holds the files it replaced).
    table = tmp_path / "table.md"
    result = cli("confirm", str(study), "--home", str(home), "--markdown", str(table),
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "was not registered" not in result.stderr
    assert "registered the best configuration's model as 'carried' version 1" in result.stdout
    rows = [line for line in table.read_text().splitlines() if line.startswith("| ")][1:]
    assert sorted(row.split("|")[1].strip().split()[0] for row in rows) == ["baseline", "top1"]
