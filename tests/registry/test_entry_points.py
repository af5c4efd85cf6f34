import os
from pathlib import Path
import subprocess
import sys

from tests.registry.test_registry import make_installed_package


def test_installed_package_is_discovered_by_entry_point(tmp_path: Path) -> None:
    make_installed_package(tmp_path, "halfdrop_ep")
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "COLUMNS": "200"}
    out = subprocess.run(
        [sys.executable, "-m", "framework.cli", "plugins", "list"],
        capture_output=True, text=True, env=env, check=True,
    ).stdout
    row = next(line for line in out.splitlines() if "halfdrop_ep" in line)
    assert "entry point halfdrop_ep (halfdrop_ep)" in row
    assert "Dropout at half of p_max" in row
