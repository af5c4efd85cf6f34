import os
from pathlib import Path
import subprocess
import sys
import textwrap
from typing import Literal

import pytest

from framework import registry
from framework.config import load_spec
from framework.errors import SpecError
from framework.strategies.base import DropoutStrategy
from framework.strategies.base import StrategyConfig
from tests.conftest import TINY_STUDY
from tests.conftest import write_study


class EchoConfig(StrategyConfig):
    name: Literal["echo_test"] = "echo_test"


def test_register_and_create_by_name() -> None:
    try:
        @registry.register_strategy("echo_test", config=EchoConfig)
        class Echo(DropoutStrategy):
            pass

        strategy = registry.create_strategy(EchoConfig())
        assert isinstance(strategy, Echo)
        assert "echo_test" in registry.list_strategies("echo*")
    finally:
        registry.strategies.remove("echo_test")


def test_duplicate_names_are_an_error() -> None:
    registry.discover()
    with pytest.raises(ValueError, match="already registered"):
        registry.register_strategy("standard", config=registry.strategies.get("standard").config)(
            type("Again", (DropoutStrategy,), {})
        )


def test_an_unknown_name_suggests_the_nearest_and_how_plugin_files_load(tmp_path: Path) -> None:
    registry.discover()
    with pytest.raises(KeyError, match="did you mean 'standard'") as caught:
        registry.strategies.get("standrd")
    assert "--plugins FILE" in str(caught.value)
    text = TINY_STUDY.format(name="tiny").replace("{name: standard, p: 0.1}", "{name: gaussian}")
    with pytest.raises(SpecError) as refused:
        load_spec(write_study(tmp_path, text))
    assert refused.value.key == "dropout[0]" and "did you mean" not in refused.value.message
    assert "unknown strategy 'gaussian'" in refused.value.message
    assert "the study's `plugins:`" in refused.value.message


def test_tag_must_match_the_name() -> None:
    with pytest.raises(TypeError, match="Literal"):
        registry.register_strategy("other_name", config=EchoConfig)(
            type("Mismatch", (DropoutStrategy,), {})
        )
    assert "other_name" not in registry.strategies


PLUGIN_FILE = '''
from typing import Literal
from pydantic import Field
from framework import RateConfig, register_strategy
from framework.strategies.base import RateStrategy

class HalfConfig(RateConfig):
    """Dropout at half of p_max."""
    name: Literal["{name}"] = "{name}"
    p_max: float = Field(0.2, ge=0, lt=1)

@register_strategy("{name}", config=HalfConfig)
class Half(RateStrategy):
    def rate(self, step, total_steps):
        return self.config.p_max / 2
'''


def test_plugin_file_named_in_the_study_is_loaded(tmp_path: Path) -> None:
    (tmp_path / "my_plugins").mkdir()
    (tmp_path / "my_plugins" / "half.py").write_text(PLUGIN_FILE.format(name="half_file_test"))
    text = TINY_STUDY.format(name="tiny") + "plugins: [my_plugins/half.py]\n"
    text = text.replace("{name: standard, p: 0.1}", "{name: half_file_test, p_max: 0.3}")
    text = text.replace("dropout.0.p:", "dropout.0.p_max:")
    try:
        loaded = load_spec(write_study(tmp_path, text))
        assert loaded.spec.dropout[0].p_max == 0.3
        assert registry.strategies.get("half_file_test").source.startswith("file ")
    finally:
        registry.strategies.remove("half_file_test")


def test_missing_plugin_path_names_the_key(tmp_path: Path) -> None:
    text = TINY_STUDY.format(name="tiny") + "plugins: [nowhere/gauss.py]\n"
    with pytest.raises(SpecError) as info:
        load_spec(write_study(tmp_path, text))
    assert info.value.key == "plugins[0]"


def test_broken_plugin_file_is_a_spec_error(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("raise RuntimeError('boom')\n")
    text = TINY_STUDY.format(name="tiny") + "plugins: [broken.py]\n"
    with pytest.raises(SpecError, match="boom"):
        load_spec(write_study(tmp_path, text))


def make_installed_package(site: Path, name: str) -> None:
    """A package as pip leaves it: the module plus a dist-info with an entry point."""
    (site / f"{name}.py").write_text(PLUGIN_FILE.format(name=name))
    info = site / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent(f"""\
        [dropout_lab.plugins]
        {name} = {name}
        """)
    )
    (info / "RECORD").write_text("")


def test_a_study_still_naming_a_plugin_file_moved_into_a_package_says_what_to_do(
        tmp_path: Path) -> None:
    """The installed package registers the name first: the study is refused, naming the file,
    the package and the fix, instead of an unexplained "already registered"."""
    site = tmp_path / "site"
    site.mkdir()
    make_installed_package(site, "moved_ep")
    (tmp_path / "moved.py").write_text(PLUGIN_FILE.format(name="moved_ep"))
    text = TINY_STUDY.format(name="tiny") + "plugins: [moved.py]\n"
    study = write_study(tmp_path, text.replace("dropout.0.p:", "dropout.0.p_max:").replace(
        "{name: standard, p: 0.1}", "{name: moved_ep}"))
    refused = subprocess.run(
        [sys.executable, "-m", "framework.cli", "validate", str(study)], capture_output=True,
        text=True, env={**os.environ, "PYTHONPATH": str(site), "COLUMNS": "300"}, timeout=120)
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.startswith(f"error: {study}: plugins[0]: plugin file "
                                      f"{tmp_path / 'moved.py'} registers strategy 'moved_ep'")
    assert "entry point moved_ep (moved_ep)" in refused.stderr
    assert "remove the file from the study's `plugins:`" in refused.stderr
    assert len(refused.stderr.splitlines()) == 1 and "Traceback" not in refused.stderr
