"""What a confirmation's verdicts rest on, as files a results page ships.

A confirmation trains every configuration with the same seeds and scores each run once on the
test split. :class:`Evidence` holds all a table and a verdict need, and nothing else (no weights,
no store): per configuration, how it was chosen and which units it drops; per run (configuration
and seed), every final metric; per run, the per-example test scores; the declared claims. It is
written to a folder of three files and read back from them, so anyone can re-derive a page with
``dropout-lab verdict FOLDER`` from the files alone:

* ``confirmation.json``: the study, seeds, baseline, metrics and their directions, the
  configurations (label, arm, search trial, parameters, how chosen, what they drop), the claims,
  the settings each study trained with and the CPU;
* ``runs.csv``: one row per run, ``configuration,seed,<metric>...`` (empty where not reported);
* ``examples.npz``: ``<configuration>@<seed>@<metric>`` -> the run's per-example test scores
  (float32, compressed).

This module imports no torch and no Optuna.
"""

from __future__ import annotations

import csv
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from framework.config.claims import Claim


FORMAT = 1
"""Version of the folder's layout; a reader refuses a folder of a newer one."""
FILES = ("confirmation.json", "runs.csv", "examples.npz")


@dataclass(frozen=True)
class Choice:
    """How a configuration was chosen: the search that found it."""

    searched: tuple[str, ...] = ()
    """Keys of the search space (empty: the spec as written, not searched)."""
    trials: int = 0
    """Finished trials of that search."""
    sampler: str = ""

    def describe(self) -> str:
        if not self.searched:
            return "as written (not searched)"
        return f"{self.sampler}, {self.trials} trials over {', '.join(self.searched)}"


@dataclass(frozen=True)
class ConfigurationRecord:
    """One configuration of the confirmation."""

    label: str
    arm: str | None = None
    source_trial: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    chosen: Choice = Choice()
    drops: tuple[str, ...] = ()
    """The kinds of unit its dropout acts on (site kinds, ``recurrent``, ``layers``, ...);
    empty when it drops nothing."""


@dataclass(frozen=True)
class Transcribed:
    """A claim's paired difference as a table printed it before runs were exported: the seeds,
    Δ and its 95% t-interval over seeds, and where they were read. A page re-derived from it
    says so; its verdict counts seeds only (no test examples) until the study is run again."""

    n_seeds: int
    estimate: float
    ci: tuple[float, float] | None
    """The paired 95% t-interval of Δ as printed; None for an unpaired comparison, whose
    interval the tool computes from the two standard errors (Welch)."""
    candidate_mean: float
    baseline_mean: float
    source: str
    candidate_se: float | None = None
    baseline_se: float | None = None
    n_baseline: int | None = None
    """Seeds of the baseline when not paired (default: ``n_seeds``)."""


@dataclass
class Evidence:
    """A confirmation's data: enough for its table and its verdicts."""

    study: str
    seeds: list[int]
    baseline: str | None
    metrics: list[tuple[str, str]]
    """``(metric, direction)``: the objectives first, then the other metrics of the table."""
    configurations: list[ConfigurationRecord]
    claims: list[Claim] = field(default_factory=list)
    values: dict[str, dict[str, dict[int, float]]] = field(default_factory=dict)
    """``{configuration: {metric: {seed: value}}}`` of the complete runs."""
    examples: dict[tuple[str, int], dict[str, np.ndarray]] = field(default_factory=dict)
    """``{(configuration, seed): {metric: per-example test scores}}``."""
    settings: list[tuple[str, str]] = field(default_factory=list)
    empty_arms: list[str] = field(default_factory=list)
    transcribed: dict[str, Transcribed] = field(default_factory=dict)
    """Per claim id: its difference as an earlier table printed it (no run data)."""

    def per_example(self, label: str, metric: str) -> np.ndarray | None:
        """``(seeds, examples)`` scores of ``label`` on ``metric`` over :attr:`seeds` in order,
        or None unless every seed's run has them (with equally many examples)."""
        rows = [self.examples.get((label, seed), {}).get(metric) for seed in self.seeds]
        if not rows or any(r is None for r in rows) or len({len(r) for r in rows}) != 1:
            return None
        return np.stack(rows).astype(np.float64)

    def configuration(self, label: str) -> ConfigurationRecord | None:
        return next((c for c in self.configurations if c.label == label), None)


def save(evidence: Evidence, folder: Path) -> None:
    """Write the three files into ``folder`` (created; files written whole, then renamed)."""
    folder.mkdir(parents=True, exist_ok=True)
    head = {
        "format": FORMAT, "study": evidence.study, "seeds": evidence.seeds,
        "baseline": evidence.baseline, "metrics": [list(m) for m in evidence.metrics],
        "configurations": [asdict(c) for c in evidence.configurations],
        "claims": [c.model_dump() for c in evidence.claims],
        "settings": [list(s) for s in evidence.settings], "empty_arms": evidence.empty_arms,
        "transcribed": {claim: asdict(t) for claim, t in evidence.transcribed.items()},
    }
    _write(folder / "confirmation.json", json.dumps(head, indent=1) + "\n")
    names = [m for m, _ in evidence.metrics]
    names += sorted({m for by in evidence.values.values() for m in by} - set(names))
    rows = [["configuration", "seed", *names]]
    for label, by_metric in evidence.values.items():
        for seed in sorted({s for values in by_metric.values() for s in values}):
            rows.append([label, str(seed), *(_number(by_metric.get(m, {}).get(seed))
                                              for m in names)])
    _write(folder / "runs.csv", "".join(",".join(row) + "\n" for row in rows))
    arrays = {f"{label}@{seed}@{metric}": values.astype(np.float32)
              for (label, seed), by_metric in evidence.examples.items()
              for metric, values in by_metric.items()}
    partial = folder / "examples.tmp.npz"
    np.savez_compressed(partial, **arrays)
    partial.replace(folder / "examples.npz")


def load(folder: Path) -> Evidence:
    """Read a folder written by :func:`save`.

    Raises:
        ValueError: naming the file when one is missing or not of this format.
    """
    for name in FILES:
        if not (folder / name).is_file():
            raise ValueError(f"{folder / name} is missing: not a folder written by "
                             "`dropout-lab confirm --export`")
    head = json.loads((folder / "confirmation.json").read_text())
    if head.get("format", 0) > FORMAT:
        raise ValueError(f"{folder / 'confirmation.json'} is of format {head['format']}; this "
                         f"version reads format {FORMAT}")
    evidence = Evidence(
        study=head["study"], seeds=[int(s) for s in head["seeds"]], baseline=head["baseline"],
        metrics=[(m, d) for m, d in head["metrics"]],
        configurations=[record_from_json(c) for c in head["configurations"]],
        claims=[Claim.model_validate(c) for c in head["claims"]],
        settings=[(t, s) for t, s in head["settings"]], empty_arms=list(head["empty_arms"]),
        transcribed={claim: Transcribed(**{**t, "ci": tuple(t["ci"]) if t.get("ci") else None})
                     for claim, t in head.get("transcribed", {}).items()})
    with (folder / "runs.csv").open(newline="") as handle:
        reader = csv.reader(handle)
        names = next(reader)[2:]
        for label, seed, *cells in reader:
            by_metric = evidence.values.setdefault(label, {})
            for metric, cell in zip(names, cells, strict=True):
                if cell:
                    by_metric.setdefault(metric, {})[int(seed)] = float(cell)
    with np.load(folder / "examples.npz") as arrays:
        for key in arrays.files:
            label, seed, metric = key.rsplit("@", 2)
            evidence.examples.setdefault((label, int(seed)), {})[metric] = arrays[key]
    return evidence


def record_from_json(data: dict[str, Any]) -> ConfigurationRecord:
    """A configuration as :func:`save` (or a confirmation study's plan) stores it; the keys a
    plan from before they were recorded lacks take their defaults (not searched, drops
    nothing known)."""
    chosen = data.get("chosen") or {}
    return ConfigurationRecord(
        data["label"], data.get("arm"), data.get("source_trial"), data.get("params") or {},
        Choice(tuple(chosen.get("searched", ())), int(chosen.get("trials", 0)),
               chosen.get("sampler", "")),
        tuple(data.get("drops") or ()))


def _number(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "" if value is None else str(value)
    return repr(float(value))


def _write(path: Path, text: str) -> None:
    partial = path.with_suffix(path.suffix + ".tmp")
    partial.write_text(text)
    partial.replace(path)
