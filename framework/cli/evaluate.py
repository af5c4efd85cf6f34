"""``dropout-lab evaluate``: score a trial's best checkpoint on a labelled file.

The checkpoint is the ``best.pt`` artifact that every trial logs (``spec``, ``model`` weights). It
is found from a study file and a trial number (the Optuna trial's ``mlflow_run_id`` names the
MLflow run that holds it), or given as a path. The model and dataset are rebuilt from the
checkpoint's own spec (so the vocabulary is the one the model was trained with), and the file is
read by the dataset's ``labelled_batches`` in the training data's format. Strategies'
``for_inference`` transforms are not applied: the weights are scored as trained, dropout off.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from typing import Any

import typer

from framework.cli.common import Home
from framework.cli.common import PluginPaths
from framework.cli.common import Storage
from framework.cli.common import TrackingUri
from framework.cli.common import fail
from framework.cli.common import load
from framework.cli.common import quiet_libraries
from framework.errors import SpecError


def register(app: typer.Typer) -> None:
    app.command()(evaluate)


def evaluate(
    labelled: Annotated[Path, typer.Argument(
        help="Labelled file to score, in the format of the trial's data (e.g. sentence<TAB>label)."
    )],
    study: Annotated[Path | None, typer.Option(help="Study file of the trial.")] = None,
    trial: Annotated[int | None, typer.Option(help="Trial number in that study.")] = None,
    checkpoint: Annotated[Path | None, typer.Option(
        help="A best.pt file, instead of --study and --trial.")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Examples per forward pass.")] = 64,
    plugins: PluginPaths = None,
    home: Home = Path("mlruns"),
    storage: Storage = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Score a trial's best checkpoint on a labelled file: loss and the dataset's metrics."""
    if (checkpoint is None) == (study is None or trial is None):
        fail(SpecError("give either --checkpoint FILE, or --study FILE and --trial N"))
    if not labelled.is_file():
        fail(SpecError(f"no such file: {labelled}"))
    import tempfile

    quiet_libraries()
    with tempfile.TemporaryDirectory(prefix="dropout-lab-eval-") as tmp:
        if checkpoint is None:
            spec = load(study, [], plugins).spec
            from framework.tracking import Locations

            locations = Locations.resolve(home, storage, tracking_uri)
            try:
                checkpoint = download_checkpoint(spec.name, trial, locations, Path(tmp))
            except SpecError as error:
                fail(error)
        elif not checkpoint.is_file():
            fail(SpecError(f"no such checkpoint: {checkpoint}"))
        try:
            scores = score_checkpoint(checkpoint, labelled, batch_size)
        except (SpecError, ValueError) as error:
            fail(error if isinstance(error, SpecError) else SpecError(str(error)))
    for name, value in scores.items():
        typer.echo(f"{name}: {value:.6g}" if isinstance(value, float) else f"{name}: {value}")


def download_checkpoint(study_name: str, number: int, locations: Any, folder: Path) -> Path:
    """Fetch ``best.pt`` of trial ``number`` of ``study_name`` from its MLflow run.

    Raises:
        SpecError: when the study, the trial or its run's checkpoint does not exist.
    """
    import os

    from mlflow import MlflowClient
    import optuna

    # The download's progress bar would land in the command's output.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    try:
        study = optuna.load_study(study_name=study_name, storage=locations.storage)
    except KeyError:
        raise SpecError(f"no study {study_name!r} in {locations.storage}") from None
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
    ``batch_size``.

    Raises:
        SpecError: when the checkpoint's dataset cannot read labelled files.
    """
    import torch

    from framework import registry

    saved = torch.load(path, map_location="cpu", weights_only=True)
    registry.discover()
    model_spec = registry.models.get(saved["spec"]["model"]["name"]).config.model_validate(
        saved["spec"]["model"])
    data_spec = registry.datasets.get(saved["spec"]["data"]["name"]).config.model_validate(
        saved["spec"]["data"])
    dataset = registry.create_dataset(data_spec, model_spec)
    if not hasattr(dataset, "labelled_batches"):
        raise SpecError(f"dataset {data_spec.name!r} cannot read labelled files")
    model = registry.create_model(model_spec, dataset.info)
    model.load_state_dict(saved["model"])
    model.eval()
    extra = getattr(dataset, "metrics", None)
    sums: dict[str, float] = {"loss": 0.0}
    n = 0
    with torch.no_grad():
        for batch in dataset.labelled_batches(labelled, batch_size):
            out = model(batch)
            size = len(batch.targets)
            sums["loss"] += out.loss.item() * size
            for name, value in (extra(out, batch) if extra else {}).items():
                sums[name] = sums.get(name, 0.0) + value * size
            n += size
    if n == 0:
        raise SpecError(f"{labelled}: no labelled examples")
    return {"examples": n, **{name: total / n for name, total in sums.items()}}
