"""``dropout-lab verdict``: a page's verdicts from the files it ships, with no store.

``dropout-lab confirm --export FOLDER`` writes what a study's verdicts rest on (per run every
metric, per run the per-example test scores, the claims and how each configuration was chosen);
this command rebuilds the table and the verdict lines from those files, so that a results page
can be re-derived by anyone from the data it ships. A folder with a ``targets.json`` (the
benchmarks page's) is judged target by target from the benchmarks' printed per-round timings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from framework.cli.common import MarkdownPath
from framework.cli.common import fail
from framework.cli.common import write_markdown
from framework.errors import SpecError


def register(app: typer.Typer) -> None:
    app.command()(verdict)


def verdict(
    folder: Annotated[Path, typer.Argument(
        help="A folder written by `dropout-lab confirm --export`.")],
    markdown: MarkdownPath = None,
) -> None:
    """Rebuild a confirmation's table and its claims' verdicts from exported files."""
    from framework.reporting.verdicts import derive

    if not folder.is_dir():
        fail(SpecError(f"{folder} is not a folder (give the one `confirm --export` wrote)"))
    try:
        text = derive(folder)
    except (ValueError, KeyError, OSError) as error:
        fail(SpecError(str(error), source=str(folder)))
    typer.echo(text, nl=False)
    if markdown is not None:
        write_markdown(markdown, text)
