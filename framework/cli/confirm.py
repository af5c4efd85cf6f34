"""``dropout-lab confirm``: re-train a study's best configurations and its baseline over seeds."""

from __future__ import annotations

from dataclasses import replace
import functools
from pathlib import Path
from typing import Annotated

import typer

from framework.cli.common import Home
from framework.cli.common import MarkdownPath
from framework.cli.common import Overrides
from framework.cli.common import PluginPaths
from framework.cli.common import Storage
from framework.cli.common import TrackingUri
from framework.cli.common import fail
from framework.cli.common import line_display
from framework.cli.common import load
from framework.cli.common import quiet_libraries
from framework.cli.common import run_copies_of
from framework.cli.common import write_markdown
from framework.errors import SpecError


def register(app: typer.Typer) -> None:
    app.command()(confirm)


def confirm(
    file: Path,
    overrides: Overrides = None,
    top: Annotated[int | None, typer.Option(
        min=1, help="Best configurations to confirm (default: the study's confirm.top).")] = None,
    seeds: Annotated[int | None, typer.Option(
        min=2, help="Fresh seeds per configuration (default: the study's confirm.seeds).")] = None,
    run_arms: Annotated[bool, typer.Option(
        "--run-arms", help="First run each arm's search to its budget (studies with arms).")
    ] = False,
    allow_changed: Annotated[bool, typer.Option(
        "--allow-changed", help="Confirm even with settings that differ from the search's "
        "(e.g. fewer train.max_steps); the table labels each study with its settings.")
    ] = False,
    markdown: MarkdownPath = None,
    export: Annotated[Path | None, typer.Option(
        help="Write what the verdicts rest on (every run's metrics, per-example test scores, "
        "the claims) to this folder, for `dropout-lab verdict` (default: under --home/reports)."
    )] = None,
    workers: Annotated[int, typer.Option(
        min=1, help="Processes on this machine sharing the trials (as that many invocations of "
        "this command would).")] = 1,
    plugins: PluginPaths = None,
    home: Home = Path("mlruns"),
    storage: Storage = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Re-train the K best configurations and the baseline with N fresh seeds; compare them.

    Every (configuration, seed) pair is a trial of the Optuna study '<name>-confirm' and a child
    run (confirm-<configuration>-seed-<seed>) of a confirmation run in MLflow; each scores the
    test split once, after training.
    Running it again continues; several processes may share the work (--workers starts them).
    The table and one verdict per declared claim go to stdout, to Markdown under --home/reports
    and to MLflow; what they rest on is exported (--export). Settings that differ from the ones
    the search used are refused unless --allow-changed is given.
    """
    loaded = load(file, overrides, plugins)
    if export is not None and export.exists() and not export.is_dir():
        fail(SpecError(f"{export} is a file; --export takes a folder", key="--export"))
    from framework.cli.progress import RunDisplay
    from framework.tuning.workers import inherited_locations
    from framework.tuning.workers import is_copy

    locations = inherited_locations(home, storage, tracking_uri)
    if not run_arms:
        require_storage(locations, file)
    quiet_libraries()
    from framework.reporting.comparison import build
    from framework.reporting.verdicts import claim_lines
    from framework.tuning.confirm import check_arms
    from framework.tuning.confirm import confirmation_spec
    from framework.tuning.confirm import dropout_labels
    from framework.tuning.confirm import open_confirmation
    from framework.tuning.confirm import plan_confirmation
    from framework.tuning.confirm import run_arms as search_arms
    from framework.tuning.confirm import run_confirmation

    display_for = line_display if is_copy() or workers > 1 else RunDisplay
    copies = functools.partial(run_copies_of, loaded=loaded, home=home, workers=workers,
                               storage=storage, tracking_uri=tracking_uri, plugins=plugins)
    try:  # everything that can be checked before a trial starts
        if run_arms:
            check_arms(loaded, locations)
            if workers > 1:
                copies("run", [])
            else:
                search_arms(loaded, locations, display_for)
        plan = plan_confirmation(loaded, locations.storage, top, seeds, allow_changed)
        display = display_for(confirmation_spec(loaded, plan).spec)
        if workers > 1:  # the copies train; this process then writes the table once
            open_confirmation(loaded, locations, top, seeds, allow_changed)  # queued once
            options = [*(["--top", str(top)] if top else []),
                       *(["--seeds", str(seeds)] if seeds else []),
                       *(["--allow-changed"] if allow_changed else [])]
            copies("confirm", options)
    except SpecError as error:
        fail(error)
    except KeyboardInterrupt:
        typer.echo("\ninterrupted: run the same command again to continue.", err=True)
        raise typer.Exit(130) from None
    try:
        with display:
            outcome = run_confirmation(loaded, locations, top, seeds, display, allow_changed)
    except KeyboardInterrupt:
        typer.echo("\ninterrupted: run the same command again to continue the confirmation.",
                   err=True)
        raise typer.Exit(130) from None
    if is_copy():  # the process that started the copies writes the table once
        return
    evidence = export_evidence(loaded, outcome.study, locations,
                               export or Path(home) / "reports" / f"{loaded.spec.name}-evidence")
    comparison = replace(build(evidence), dropouts=dropout_labels(outcome.study))
    write_tables(comparison, Path(home), outcome.parent_run_id, locations, "confirm", markdown,
                 appendix=claim_lines(evidence))
    if not evidence.claims:
        typer.echo("no claims declared: add `claims:` to the study to get verdicts")
    register_best(loaded.spec.name, outcome.study, comparison, locations)


def export_evidence(loaded, study, locations, folder: Path):
    """Write the confirmation's evidence to ``folder`` and read it back: the table and the
    verdicts printed here are computed from the very files a page ships."""
    from framework.reporting.evidence import load as load_evidence
    from framework.reporting.evidence import save
    from framework.tracking import Tracker
    from framework.tuning.evidence import collect

    save(collect(study, loaded.spec.claims, Tracker(locations)), folder)
    typer.echo(f"evidence written to {folder} (`dropout-lab verdict {folder}` re-derives the "
               "table and the verdicts from it)")
    return load_evidence(folder)


def register_best(study: str, confirm_study, comparison, locations) -> None:
    """Register the confirmed best configuration's model under the study's name, and say so."""
    from framework.tracking import Tracker
    from framework.tracking.redact import redact
    from framework.tuning.best_model import register_confirmed_best

    try:
        version = register_confirmed_best(study, confirm_study, comparison, Tracker(locations))
    except Exception as exc:  # the confirmation itself is complete and written
        typer.echo(f"warning: the best configuration's model was not registered: "
                   f"{redact(f'{type(exc).__name__}: {exc}')[:500]}", err=True)
        return
    if version is not None:
        typer.echo(f"registered the best configuration's model as {version.name!r} version "
                   f"{version.version} ({version.tags.get('dropout_lab.config')}, seed "
                   f"{version.tags.get('dropout_lab.seed')})")


def require_storage(locations, file: Path) -> None:
    """Exit 2 (creating nothing) when the embedded Optuna store does not exist yet."""
    url = locations.storage
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        fail(SpecError(f"no Optuna storage at {url.removeprefix('sqlite:///')}; run the study "
                       "first (dropout-lab run), or pass --home/--storage", source=str(file)))


def write_tables(comparison, home: Path, run_id: str, locations, kind: str,
                 extra: Path | None = None, appendix: str = "") -> Path:
    """Print the comparison, write it as Markdown under ``home/reports`` (and to ``extra``, a
    ``--markdown`` path, when given) and log it to MLflow; ``appendix`` (the claims' verdict
    lines) follows the table in each."""
    from framework.reporting.comparison import to_markdown
    from framework.reporting.comparison import to_text
    from framework.tracking import Tracker

    typer.echo(to_text(comparison) + appendix, nl=False)
    markdown = to_markdown(comparison) + ("\n" + appendix if appendix else "")
    out = home / "reports" / f"{comparison.study}-{kind}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown)
    Tracker(locations).log_text(run_id, markdown, "comparison.md")
    typer.echo(f"written {out} and logged to MLflow run {run_id}")
    if extra is not None:
        write_markdown(extra, markdown)
    return out
