"""The README's plugin example imports torch only when a model is built, so that every command
that loads it (``plugins list``, ``validate``) stays fast."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT


EXAMPLE = ROOT / "examples" / "plugins" / "gaussian.py"


def test_listing_plugins_with_the_example_does_not_import_torch() -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "framework.cli", "plugins", "list",
         "--plugins", str(EXAMPLE)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    assert "gaussian" in result.stdout
    # -X importtime lists every module imported, one per line: "... | <cumulative> | name".
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:")}
    assert "framework.cli.plugins" in imported, "the list does not cover the command"
    assert not {m for m in imported if m == "torch" or m.startswith("torch.")}
