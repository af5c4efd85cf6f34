"""Built-in plugin schemas load without torch, so that `dropout-lab validate` answers at once."""

import subprocess
import sys


def test_validating_a_study_does_not_import_torch_mlflow_or_optuna() -> None:
    code = (
        "import sys; from framework import registry; from framework.config import load_spec; "
        "registry.discover(); load_spec('studies/quickstart.yaml'); "
        "heavy = [m for m in ('torch', 'mlflow', 'optuna') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    from tests.conftest import ROOT

    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
