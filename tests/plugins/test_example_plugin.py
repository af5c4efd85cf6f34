"""The README's plugin example is real: it loads from its file, validates, trains and logs."""

from pathlib import Path

import torch

from framework import registry
from framework.config import load_spec
from framework.models.sites import find_sites
from framework.training.run import run_training
from tests.conftest import ROOT


EXAMPLE = ROOT / "examples" / "plugins" / "gaussian.py"


def test_readme_shows_the_example_file_verbatim() -> None:
    code = EXAMPLE.read_text()
    assert len(code.splitlines()) < 30
    assert code in (ROOT / "README.md").read_text()


def test_example_plugin_runs_from_the_command_line_path(tiny_study: Path, tmp_path: Path) -> None:
    try:
        loaded = load_spec(
            tiny_study,
            ["dropout=[{name: gaussian, p: 0.2, sites: [residual]}]", "search.space={}"],
            plugin_paths=(str(EXAMPLE),),
        )
        assert registry.strategies.get("gaussian").source == f"file {EXAMPLE}"
        result = run_training(loaded.spec, tmp_path)
        assert result.final["val_loss"] < 4.2
        model = registry.create_model(loaded.spec.model, {"vocab_size": 65})
        registry.create_strategy(loaded.spec.dropout[0]).attach(model)
        noisy = [site for site in find_sites(model) if site.op is not None]
        assert {site.kind for site in noisy} == {"residual"}
        assert abs(noisy[0].op.std - (0.2 / 0.8) ** 0.5) < 1e-12
        x = torch.ones(10_000)
        assert noisy[0].op.train()(x).std().item() > 0.4
        assert torch.equal(noisy[0].op.eval()(x), x)
    finally:
        registry.strategies.remove("gaussian")
