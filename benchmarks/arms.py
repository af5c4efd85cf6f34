"""Training throughput of a study's arms, side by side in one process (alternating rounds).

Each arm of the study file is built as its trials build it (model, data, strategies, optimizer)
and trained by the framework's own loop (``framework.training.loop.train``) for ``--steps``
steps; a sample is the loop's own training time per step (evaluation excluded). Arms alternate
in rotated rounds after a warm-up round (``_timing.py``), so that load slows them alike; the
table has medians, tokens per second, and each arm's step time relative to the baseline arm.
``--variant LABEL=ARM[,KEY=VALUE...]`` adds an arm with overrides of its dropout list, e.g. the
dense-masking reference of structured dropout (the same masks, full products):

    .venv/bin/python benchmarks/arms.py studies/structured_lstm.yaml [OVERRIDES...] \
        --variant 'structured_step_dense=structured_step,0.dense=true' \
        --variant 'structured_seq_dense=structured_seq,0.dense=true'

A ``--variant`` named ``<arm>_dense`` also prints the speed-up of ``<arm>`` over it (dense time /
compact time), the paper's comparison (Sarma et al., NeurIPS 2021).
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path
from typing import Any

from _timing import Conditions
from _timing import alternate
from _timing import medians
import torch

from framework import registry
from framework.config import load_spec
from framework.config.loading import validate_variant
from framework.config.paths import set_path
from framework.strategies.stack import StrategyStack
from framework.training.loop import train
from framework.training.run import load_dataset
from framework.tuning.confirm import arm_loaded


def parse_variant(text: str) -> tuple[str, str, dict[str, Any]]:
    """``LABEL=ARM,0.dense=true`` -> (label, arm, {"0.dense": True}) (YAML-typed values)."""
    import yaml

    label, _, rest = text.partition("=")
    arm, *pairs = rest.split(",")
    overrides = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        overrides[key] = yaml.safe_load(value)
    if not label or not arm:
        raise SystemExit(f"--variant {text!r}: expected LABEL=ARM[,KEY=VALUE...]")
    return label, arm, overrides


def arm_specs(path: Path, overrides: list[str], variants: list[str], steps: int
              ) -> dict[str, Any]:
    """Label -> the validated spec of each arm and variant, trained ``steps`` steps with one
    evaluation at the end (its time is not counted)."""
    loaded = load_spec(path, [*overrides, f"train.max_steps={steps}",
                              f"train.eval_every={steps}", "train.eval_batches=1"])
    specs = {arm: arm_loaded(loaded, arm) for arm in loaded.spec.arms}
    out = {label: arm.spec for label, arm in specs.items()}
    for text in variants:
        label, arm, overrides = parse_variant(text)
        raw = copy.deepcopy(specs[arm].raw)
        for key, value in overrides.items():
            set_path(raw, f"dropout.{key}", value)
        out[label] = validate_variant(raw, f"--variant {label}", str(path))
    return out


def seconds_per_step(spec: Any, dataset: Any, seed: int) -> float:
    """Train a fresh model of ``spec`` with the framework's loop; its training time per step."""
    torch.manual_seed(seed)
    model = registry.create_model(spec.model, dataset.info)
    strategies = StrategyStack.from_configs(spec.dropout)
    result = train(model, dataset, spec.train, strategies, device=torch.device("cpu"), seed=seed)
    return result.final["train_time"] / spec.train.max_steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path, help="a study file with arms")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, as dropout-lab takes")
    parser.add_argument("--variant", action="append", default=[],
                        help="LABEL=ARM[,KEY=VALUE...]: an arm with its dropout list changed")
    parser.add_argument("--steps", type=int, default=20, help="training steps per sample")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    conditions = Conditions()
    specs = arm_specs(args.study, args.overrides, args.variant, args.steps)
    first = next(iter(specs.values()))
    dataset = load_dataset(first)
    baseline = next((arm for arm, body in load_spec(args.study, args.overrides).spec.arms.items()
                     if body.baseline), next(iter(specs)))
    times = alternate({label: (lambda s=spec: seconds_per_step(s, dataset, 0))
                       for label, spec in specs.items()}, args.repeats)
    median = medians(times)
    print(f"{args.study}: {len(specs)} arms, {args.steps} training steps per sample (batch "
          f"{first.train.batch_size}), medians of {args.repeats} alternating rounds after a "
          f"warm-up round, {args.threads} thread(s)")
    print(f"  {'arm':<24}{'ms/step':>10}{'time vs ' + baseline:>22}")
    for label, value in median.items():
        print(f"  {label:<24}{value * 1e3:10.1f}{value / median[baseline]:21.2f}x")
    for label in median:
        if label.endswith("_dense") and label.removesuffix("_dense") in median:
            compact = label.removesuffix("_dense")
            print(f"{compact}: {median[label] / median[compact]:.2f}x the speed of {label} "
                  "(dense masking, same masks)")
    print(conditions.report())


if __name__ == "__main__":
    main()
