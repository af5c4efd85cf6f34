"""The results studies (issues 15, 16 and 18), scaled down to seconds, so their files keep working.

Every configuration a results study trains (each arm, each option of a searched choice or
category, ranges at their low end; seeds aside), and its header's pilot, is validated from the
file with overrides that shrink the model and the run, and trained for two steps; the metrics
its objectives and its confirmation table name must come out. LayerDrop's two studies also go
through the commands of their header (run, depth with the from-scratch line, compare) into
Markdown tables and a plot under pytest's folder; ``docs/results/timed.sh`` logs what a page
quotes about each command.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
import re
import shlex
import subprocess
from typing import Any

import pytest

from framework.config import LoadedSpec
from framework.config import load_spec
from framework.config import validate
from framework.config.paths import set_path
from framework.config.space import CategoricalParam
from framework.config.space import ChoiceParam
from framework.training.run import run_training
from framework.tuning.confirm import arm_loaded
from tests.conftest import ROOT
from tests.conftest import invoke


STUDIES = ROOT / "studies"
RESULTS = ["dynamic_dropout", "dynamic_dropout_limited", "layerdrop", "layerdrop_scratch",
           "standout_digits", "lr_drop_sst2", "structured_lstm", "early_late", "mc_dropout",
           "mc_dropout_sst2"]
"""The study files behind the results pages (docs/results)."""
RUN = ["train.max_steps=2", "train.eval_every=1", "train.eval_batches=1", "train.warmup_steps=1",
       "train.batch_size=4", "train.threads=1", "train.measure_inference=false",
       "train.checkpoints=false"]
SMALL = {  # per model: the same architecture, a few units wide
    # 2% held out: the test split, scored whole once, stays quick (as in tests/conftest.py).
    "gpt": ["model.n_embd=16", "model.n_head=2", "model.block_size=16",
            "data.held_out_fraction=0.02"],
    "encoder": ["model.n_embd=16", "model.n_head=2", "model.block_size=24",
                "data.train_examples=200", "data.val_size=20"],
    "lstm_lm": ["model.n_embd=16", "model.n_hidden=16", "model.block_size=16",
                "data.eval_warmup=4", "data.held_out_fraction=0.02"],
    "mlp": ["model.hidden=[16,16]"],
}


def scaled(name: str, extra: list[str] = ()) -> LoadedSpec:
    """The study file ``name`` with the overrides that make it train in moments."""
    path = STUDIES / f"{name}.yaml"
    spec = load_spec(path, list(extra)).spec
    # A size the study searches (early_late's data.train_examples) keeps the study's values.
    small = [o for o in SMALL[spec.model.name] if o.split("=")[0] not in spec.search.space]
    # One override per key (a key given twice is refused): the small sizes win over the pilot's.
    merged = {o.split("=")[0]: o for o in [*extra, *RUN, *small]}
    return load_spec(path, list(merged.values()))


def pilot(name: str) -> list[str] | None:
    """The overrides of the pilot in the study file's header (``PILOT=(...)``), if it has one."""
    header = " ".join(line.lstrip("#") for line in (STUDIES / f"{name}.yaml").read_text()
                      .splitlines() if line.startswith("#"))
    found = re.search(r"PILOT=\((.*?)\)", header)
    return shlex.split(found[1]) if found else None


def configurations(loaded: LoadedSpec) -> list[tuple[str, dict[str, Any]]]:
    """Every configuration the study trains: per arm, the product of its searched choices and
    categories (seeds aside) with ranges at their low end."""
    sources = [(arm, arm_loaded(loaded, arm)) for arm in loaded.spec.arms] or [("", loaded)]
    found = []
    for arm, source in sources:
        points = [(arm, copy.deepcopy(source.raw))]
        for path, param in source.spec.search.space.items():
            if path == "seed":
                continue
            if isinstance(param, ChoiceParam):
                values = [(n, o.value) for n, o in param.options.items()]
            elif isinstance(param, CategoricalParam):
                values = [(str(v), v) for v in param.choices]
            else:
                values = [(str(param.low), param.low)]
            points = [(f"{label} {path}={name}".strip(), _with(raw, path, value))
                      for label, raw in points for name, value in values]
        found += points
    return found


def _with(raw: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(raw)
    set_path(out, path, copy.deepcopy(value))
    return out


CASES = [(name, None) for name in RESULTS] + [
    (name, "pilot") for name in RESULTS if pilot(name) is not None]


@pytest.mark.slow
@pytest.mark.parametrize("name, variant", CASES, ids=[f"{n}-{v or 'study'}" for n, v in CASES])
def test_every_configuration_of_a_results_study_trains(name: str, variant: str | None,
                                                       tmp_path: Path) -> None:
    loaded = scaled(name, pilot(name) if variant else [])
    named = [o.metric for o in (*loaded.spec.search.objectives, *loaded.spec.confirm.metrics,
                                *loaded.spec.claims)]
    trained = configurations(loaded)
    if loaded.spec.arms:
        assert {label.split()[0] for label, _ in trained} == set(loaded.spec.arms)
    for i, (label, raw) in enumerate(trained):
        spec = validate(raw, str(STUDIES / f"{name}.yaml"))
        (tmp_path / str(i)).mkdir()
        # As a confirmation trains it: the test split scored once, after training.
        final = run_training(spec, tmp_path / str(i), score_test=True).final
        missing = [m for m in named if m not in final]
        assert not missing, f"{label}: no {missing}"
        assert math.isfinite(final["val_loss"]), label
        if spec.train.target_val_loss is not None:
            assert 1 <= final["steps_to_val_loss"] <= spec.train.max_steps + 1


def test_the_pilots_are_the_studies_own_settings_with_one_strategy() -> None:
    limited = pilot("dynamic_dropout_limited")
    loaded = load_spec(STUDIES / "dynamic_dropout_limited.yaml", limited)
    assert loaded.spec.name == "dynamic_dropout_pilot" and not loaded.spec.arms
    assert loaded.spec.dropout == [] and "data.train_fraction" in loaded.spec.search.space
    for name in ("lr_drop_sst2", "structured_lstm"):
        loaded = load_spec(STUDIES / f"{name}.yaml", pilot(name))
        assert loaded.spec.name == f"{name}_pilot" and loaded.spec.search.n_trials == 1
        assert [s.name for s in loaded.spec.dropout] == ["standard"]


@pytest.mark.slow
def test_layerdrop_pages_commands_write_their_tables_and_plot(tmp_path: Path) -> None:
    home, pages = tmp_path / "mlruns", tmp_path / "pages"
    common = [*RUN, *SMALL["gpt"], "search.n_trials=2", "--home", str(home)]
    for name in ("layerdrop", "layerdrop_scratch"):
        result = invoke("run", str(STUDIES / f"{name}.yaml"), *common)
        assert result.exit_code == 0, result.stderr
    # depth reads the scratch study's file as written: the stores hold its scaled-down trials.
    result = invoke("depth", str(STUDIES / "layerdrop.yaml"), *common,
                    "--scratch", str(STUDIES / "layerdrop_scratch.yaml"),
                    "--markdown", str(pages / "depth.md"))
    assert result.exit_code == 0, result.stderr
    table = (pages / "depth.md").read_text().splitlines()
    assert "dropout.0.p=from scratch (n=1)" in table[0]
    assert len(table) == 2 + 6  # header, rule, depths 6..1
    assert (pages / "depth.png").stat().st_size > 1000
    result = invoke("compare", str(STUDIES / "layerdrop.yaml"), *common, "--by", "dropout.0.p",
                    "--metric", "val_loss", "--metric", "val_loss_half_depth",
                    "--markdown", str(pages / "full_depth.md"))
    assert result.exit_code == 0, result.stderr
    rows = (pages / "full_depth.md").read_text().splitlines()
    assert rows[0].startswith("| dropout.0.p | n | val_loss")
    assert sum(int(row.split("|")[2]) for row in rows[2:] if row.startswith("|")) == 2


def test_timed_records_the_command_its_wall_time_and_the_load(tmp_path: Path) -> None:
    log = tmp_path / "page" / "log.txt"
    script = str(ROOT / "docs" / "results" / "timed.sh")
    done = subprocess.run([script, str(log), "sh", "-c", "sleep 0.2; exit 3", "a b"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 3  # the command's own status
    subprocess.run([script, str(log), "true"], check=True, timeout=60)
    lines = log.read_text().splitlines()
    assert lines[0] == "$ sh -c sleep\\ 0.2\\;\\ exit\\ 3 a\\ b"  # pastes back as it ran
    assert lines[1].startswith("started ") and "load average" in lines[1]
    assert lines[2].startswith("finished ") and "load average" in lines[2]
    wall = re.fullmatch(r"wall (\d+\.\d) s, exit status 3", lines[3])
    assert wall and 0.2 <= float(wall[1]) < 30
    assert lines[5] == "$ true" and lines[8].endswith("s, exit status 0")
