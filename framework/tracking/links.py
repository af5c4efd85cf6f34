"""Addresses of experiments and runs in the MLflow UI, for people to open.

MLflow 3 opens an experiment on its GenAI overview ("Traces 0"); a study's runs live in the
experiment's ``runs`` tab, so every address here names that tab (or a run inside it). The UI routes
with the URL's fragment (``/#/experiments/...``).
"""

from __future__ import annotations

from pathlib import Path
import shlex
from typing import Any
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

from framework.tracking.redact import redact


LOCAL_UI_PORT = 5000
"""Where ``dropout-lab ui`` serves a local store unless told another port."""


def local_ui(port: int = LOCAL_UI_PORT) -> str:
    """The address ``dropout-lab ui --port PORT`` serves on."""
    return f"http://127.0.0.1:{port}"


def ui_base(tracking_uri: str, port: int = LOCAL_UI_PORT) -> str:
    """The UI serving ``tracking_uri``: the server itself for ``http(s)`` URIs (credentials
    removed: a link must never carry a password), else the local ``dropout-lab ui``."""
    parts = urlsplit(tracking_uri)
    if parts.scheme not in ("http", "https"):
        return local_ui(port)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def runs_view(base: str, experiment_id: str) -> str:
    """The runs table of one experiment."""
    return f"{base}/#/experiments/{experiment_id}/runs"


def run_view(base: str, run_id: str) -> str:
    """One run's page (its metrics, parameters and artifacts), in whichever experiment."""
    return f"{base}/#/runs/{run_id}"


def browse_hint(study: str, experiment_id: str, locations: Any) -> str:
    """How to see a study's runs: the ``dropout-lab ui`` command for the home (or store) that
    was used, or the runs table's address on a tracking server."""
    uri = locations.tracking_uri
    if uri.startswith(("http://", "https://")):
        return runs_view(ui_base(uri), experiment_id)
    command = f"dropout-lab ui {shlex.quote(study)}"
    database = Path(uri.removeprefix("sqlite:///"))
    if not (uri.startswith("sqlite:///") and locations.artifact_root
            and database.name == "mlflow.db"):
        return f"{command} --tracking-uri {shlex.quote(redact(uri))}"
    home = database.parent
    if home == Path("mlruns").resolve():
        return command
    shown = home.relative_to(Path.cwd()) if home.is_relative_to(Path.cwd()) else home
    return f"{command} --home {shlex.quote(str(shown))}"
