"""Whole-process wall time: a 300-step single-trial ``dropout-lab run`` against a plain script.

The framework side is ``python -m framework.cli run`` of one trial of ``--steps`` steps of
nanoGPT's CPU recipe for shakespeare_char (``plain_gpt.STUDY``: 4 layers x 128, context 64,
batch 12, dropout 0.2 on every site, evaluation at step 250 and at the end on 20 batches), in a
new home each time: spec validation, both stores, MLflow runs, metrics, checkpoints, the model
logged to MLflow, process start and exit all included. The reference is ``plain_gpt.py`` on the
same settings, as nanoGPT's ``train.py`` would run them (its optimizer: multi-tensor AdamW on a
CPU; ``--fused`` gives it the fused one the framework uses). Neither measures inference speed
unless ``--inference-pass`` (the framework's ``train.measure_inference``).

Runs alternate (after one untimed run of each, which also makes the framework's store template)
over ``--repeats`` rounds; printed are the medians and the ratio. Target: the framework within
1.10x of the plain script.

    .venv/bin/python benchmarks/process.py [--steps 300] [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import subprocess
import sys
import tempfile

from _timing import Conditions
from _timing import alternate
from _timing import print_times
from _timing import seconds
from plain_gpt import write_study


ROOT = Path(__file__).resolve().parents[1]


def run(command: list[str]) -> None:
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL,
                   env={**os.environ, "COLUMNS": "200"})


def framework(args: argparse.Namespace) -> float:
    with tempfile.TemporaryDirectory() as folder:
        study = write_study(Path(folder))
        return seconds(lambda: run([
            sys.executable, "-m", "framework.cli", "run", str(study),
            f"train.max_steps={args.steps}", f"train.threads={args.threads}",
            f"train.measure_inference={str(args.inference_pass).lower()}",
            "--home", str(Path(folder) / "home")]))


def plain(args: argparse.Namespace) -> float:
    with tempfile.TemporaryDirectory() as out:
        return seconds(lambda: run([
            sys.executable, str(ROOT / "benchmarks" / "plain_gpt.py"), "--steps", str(args.steps),
            "--threads", str(args.threads), "--out", out, *(["--fused"] if args.fused else [])]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch threads on both sides")
    parser.add_argument("--fused", action="store_true", help="fused AdamW in the plain script")
    parser.add_argument("--inference-pass", action="store_true",
                        help="let the framework time inference after training (its default)")
    args = parser.parse_args()
    conditions = Conditions(threads=args.threads)
    times = alternate({"plain script": lambda: plain(args),
                       "dropout-lab run": lambda: framework(args)}, args.repeats)
    print(f"whole process, {args.steps} steps of nanoGPT's CPU recipe (4 x 128, batch 12 x 64, "
          f"dropout 0.2), {args.threads} threads; plain AdamW "
          f"{'fused' if args.fused else 'multi-tensor (as nanoGPT on a CPU)'}, framework "
          f"inference pass {'on' if args.inference_pass else 'off'}; medians of {args.repeats} "
          "alternating runs after one untimed run of each")
    median = print_times(times, unit="s", scale=1.0)
    print(f"ratio (dropout-lab run / plain script): "
          f"{median['dropout-lab run'] / median['plain script']:.3f}  (target <= 1.10)")
    print(conditions.report())


if __name__ == "__main__":
    main()
