"""``dropout-lab evaluate``: score a trial's best checkpoint on a labelled file.

The checkpoint is the ``best.pt`` artifact that every trial logs: the spec, the weights, the
strategies' state, the dataset's ``info`` and what reading new files needs (SST-2's vocabulary).
It is found from a study file and a trial number (the Optuna trial's ``mlflow_run_id`` names the
MLflow run that holds it; in a study with arms, ``--arm`` names the arm), given as a path, or,
with ``--confirmed``, taken from every trial of the study's confirmation. The model is rebuilt
from the checkpoint alone as the trial used it for inference: its strategies attached and their
``for_inference`` transform applied (e.g. LayerDrop's pruning), dropout off. The file is read
by the dataset's ``labelled_batches`` in the training data's format, with the vocabulary stored
in the checkpoint: no training data is read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from typing import Any

import typer

from framework.cli.common import Arm
from framework.cli.common import Home
from framework.cli.common import MarkdownPath
from framework.cli.common import PluginPaths
from framework.cli.common import Storage
from framework.cli.common import TrackingUri
from framework.cli.common import fail
from framework.cli.common import load
from framework.cli.common import quiet_libraries
from framework.cli.common import select_arm
from framework.cli.common import write_markdown
from framework.errors import SpecError


def register(app: typer.Typer) -> None:
    app.command()(evaluate)


def evaluate(
    labelled: Annotated[Path, typer.Argument(
        help="Labelled file to score, in the format of the trial's data (e.g. sentence<TAB>label)."
    )],
    study: Annotated[Path | None, typer.Option(help="Study file of the trial.")] = None,
    trial: Annotated[int | None, typer.Option(help="Trial number in that study.")] = None,
    arm: Arm = None,
    confirmed: Annotated[bool, typer.Option(
        "--confirmed", help="With --study: score every trial of the study's confirmation and "
        "summarise per configuration over seeds, against the baseline.")] = False,
    checkpoint: Annotated[Path | None, typer.Option(
        help="A best.pt file, instead of --study and --trial.")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Examples per forward pass.")] = 64,
    markdown: MarkdownPath = None,
    plugins: PluginPaths = None,
    home: Home = Path("mlruns"),
    storage: Storage = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Score a trial's best checkpoint on a labelled file: loss and the dataset's metrics."""
    by_study = study is not None and (trial is not None) != confirmed
    if (checkpoint is None) != by_study:
        fail(SpecError("give either --checkpoint FILE, or --study FILE with --trial N or "
                       "--confirmed"))
    if not labelled.is_file():
        fail(SpecError(f"no such file: {labelled}"))
    if arm is not None and trial is None:
        fail(SpecError("--arm selects the study of --trial (--confirmed scores every arm)"))
    import tempfile

    quiet_libraries()
    with tempfile.TemporaryDirectory(prefix="dropout-lab-eval-") as tmp:
        try:
            if checkpoint is not None:
                if not checkpoint.is_file():
                    raise SpecError(f"no such checkpoint: {checkpoint}")
                from framework.registry import load_plugin_path

                for item in plugins or ():
                    load_plugin_path(item, key=f"--plugins {item}")
                text = scores_text(score_checkpoint(checkpoint, labelled, batch_size))
            else:
                from framework.tracking import Locations

                loaded = load(study, [], plugins)
                spec = (loaded if confirmed else select_arm(loaded, arm)).spec
                locations = Locations.resolve(home, storage, tracking_uri)
                if confirmed:
                    text = confirmed_table(spec.name, locations, labelled, batch_size, Path(tmp))
                else:
                    path = download_checkpoint(spec.name, trial, locations, Path(tmp))
                    text = scores_text(score_checkpoint(path, labelled, batch_size))
        except SpecError as error:
            fail(error)
        except ValueError as error:  # a file the dataset cannot read
            fail(SpecError(str(error)))
    typer.echo(text, nl=False)
    if markdown is not None:
        write_markdown(markdown, text)


def scores_text(scores: dict[str, Any]) -> str:
    """``name: value`` lines, one per score."""
    return "".join(f"{name}: {value:.6g}\n" if isinstance(value, float) else f"{name}: {value}\n"
                   for name, value in scores.items())


def download_checkpoint(study_name: str, number: int, locations: Any, folder: Path) -> Path:
    """Fetch ``best.pt`` of trial ``number`` of ``study_name`` from its MLflow run.

    Raises:
        SpecError: when the study, the trial or its run's checkpoint does not exist.
    """
    from mlflow import MlflowClient

    from framework.tracking.redact import redact
    from framework.tracking.tracker import silence_mlflow_output
    from framework.tuning.storage import load_if_exists

    silence_mlflow_output()  # its download progress bar would land in the command's output
    study = load_if_exists(study_name, locations.storage)
    if study is None:
        raise SpecError(f"no study {study_name!r} in {redact(locations.storage)}")
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    if number not in trials:
        raise SpecError(f"study {study_name!r} has no trial {number} "
                        f"(trials: {sorted(trials)})")
    run_id = trials[number].user_attrs.get("mlflow_run_id")
    if run_id is None:
        raise SpecError(f"trial {number} has no MLflow run")
    client = MlflowClient(locations.tracking_uri)
    if "best.pt" not in {a.path for a in client.list_artifacts(run_id)}:
        state = trials[number].state.name.lower()
        raise SpecError(f"trial {number} ({state}) logged no best.pt checkpoint")
    return Path(client.download_artifacts(run_id, "best.pt", str(folder)))


def score_checkpoint(path: Path, labelled: Path, batch_size: int = 64) -> dict[str, Any]:
    """``examples``, ``loss`` and the dataset's metrics of the checkpoint on ``labelled``.

    Means are over examples (each batch weighted by its size), so they do not depend on
    ``batch_size``. Only the checkpoint and ``labelled`` are read (checkpoints written before
    they stored their vocabulary rebuild the dataset from their spec, which needs its files).

    Raises:
        SpecError: when the file is not a checkpoint (a foreign pickle is refused unread) or
            its dataset cannot read labelled files.
    """
    import torch

    from framework.models.pruning import load_checkpoint
    from framework.training.checkpoint import load_checkpoint_file

    saved = load_checkpoint_file(path, needs=("spec", "model"))
    reader = labelled_reader(saved)
    model = load_checkpoint(path, saved.get("info") or reader.info)
    extra = getattr(reader, "metrics", None)
    sums: dict[str, float] = {"loss": 0.0}
    n = 0
    with torch.no_grad():
        for batch in reader.labelled_batches(labelled, batch_size):
            out = model(batch)
            size = len(batch.targets)
            sums["loss"] += out.loss.item() * size
            for name, value in (extra(out, batch) if extra else {}).items():
                sums[name] = sums.get(name, 0.0) + value * size
            n += size
    if n == 0:
        raise SpecError(f"{labelled}: no labelled examples")
    return {"examples": n, **{name: total / n for name, total in sums.items()}}


def labelled_reader(saved: dict[str, Any]) -> Any:
    """The dataset object that reads labelled files for a loaded checkpoint.

    Raises:
        SpecError: when the checkpoint's dataset cannot read labelled files.
    """
    from framework import registry

    registry.discover()
    spec = saved["spec"]
    model_spec = registry.models.get(spec["model"]["name"]).config.model_validate(spec["model"])
    cls = registry.datasets.get(spec["data"]["name"]).load()
    if not hasattr(cls, "labelled_batches"):
        raise SpecError(f"dataset {spec['data']['name']!r} cannot read labelled files")
    if "data_export" in saved and hasattr(cls, "restore"):
        return cls.restore(saved["data_export"], saved["info"], model_spec)
    data_spec = registry.datasets.get(spec["data"]["name"]).config.model_validate(spec["data"])
    return registry.create_dataset(data_spec, model_spec)


def confirmed_table(study_name: str, locations: Any, labelled: Path, batch_size: int,
                    folder: Path) -> str:
    """Every complete trial of ``study_name``'s confirmation scored on ``labelled``, as a
    Markdown table: per configuration, each score's mean ± s.e. and 95% CI over the seeds, and
    its difference to the baseline (paired over shared seeds) with that CI and test.

    Raises:
        SpecError: when the study has no confirmation with a complete trial.
    """
    from optuna.trial import TrialState

    from framework.reporting.stats import compare
    from framework.reporting.stats import summarize
    from framework.tuning.confirm import confirm_name
    from framework.tuning.storage import load_if_exists

    name = confirm_name(study_name)
    study = load_if_exists(name, locations.storage)
    if study is None:
        raise SpecError(f"no confirmation {name!r}: run `dropout-lab confirm` first")
    scores: dict[str, dict[str, dict[int, float]]] = {}
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        path = download_checkpoint(name, trial.number, locations, folder / str(trial.number))
        got = score_checkpoint(path, labelled, batch_size)
        by_metric = scores.setdefault(trial.params["config"], {})
        for metric, value in got.items():
            if metric != "examples":
                by_metric.setdefault(metric, {})[int(trial.params["seed"])] = float(value)
    if not scores:
        raise SpecError(f"{name!r} has no complete trial yet")
    baseline = scores.get(study.user_attrs.get("baseline") or "")
    metrics = list(next(iter(scores.values())))
    seeds = sorted({seed for by_metric in scores.values() for seed in by_metric[metrics[0]]})
    lines = [f"{labelled.name} scored by the best checkpoint of every confirmation trial of "
             f"{study_name!r} (seeds {seeds})", ""]
    header = ["configuration", "seeds"]
    for metric in metrics:
        header += [f"{metric} mean ± s.e.", "95% CI", f"Δ {metric} vs baseline [95% CI]"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, by_metric in scores.items():
        cells = [label + (" (baseline)" if by_metric is baseline else ""),
                 str(len(by_metric[metrics[0]]))]
        for metric in metrics:
            stat = summarize(list(by_metric[metric].values()))
            cells += [f"{stat.mean:.4f} ± {stat.se:.4f}" if stat.n > 1 else f"{stat.mean:.4f}",
                      f"[{stat.ci_low:.4f}, {stat.ci_high:.4f}]" if stat.n > 1 else "–"]
            if by_metric is baseline:
                cells.append("(reference)")
            elif baseline is None or metric not in baseline:
                cells.append("–")
            else:
                diff = compare(by_metric[metric], baseline[metric])
                noise = ": within noise" if diff.within_noise else ""
                cells.append(f"{diff} {diff.test}, p = {diff.p_value:.3g}{noise}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
