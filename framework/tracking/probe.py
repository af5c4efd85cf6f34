"""Try the ``--storage`` and ``--tracking-uri`` of an invocation once, quickly, before anything
is created.

A URL that names no store Optuna or MLflow can open (an unknown scheme, a closed port, an
unknown host or database, a refused password) is bad input: a :class:`~framework.errors.SpecError`
naming the option, within seconds. Without the probe it surfaced late, after the other store was
created, and through the retries with back-off meant for a store that goes away during a study
(minutes of them for a password that never worked). Those retries stay for a running study.
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import os
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

from framework.errors import SpecError
from framework.tracking.redact import redact
from framework.tracking.store import is_database_url


CONNECT_TIMEOUT_S = 5
"""How long the probe waits for a database server or a tracking server to answer."""
CONNECT_TIMEOUT_ARGS = {
    "psycopg": "connect_timeout",
    "psycopg2": "connect_timeout",
    "pg8000": "timeout",
    "pymysql": "connect_timeout",
    "mysqldb": "connect_timeout",
    "mariadbconnector": "connect_timeout",
    "mysqlconnector": "connection_timeout",
}
"""SQLAlchemy driver name -> its connect argument for the seconds allowed to connect."""
HOSTED_SCHEMES = ("databricks", "databricks-uc", "uc")
"""Tracking URI schemes of hosted services that MLflow opens and this probe leaves alone."""
SERVER_SCHEMES = ("http", "https")
STORAGE_FORMS = "sqlite:///PATH, postgresql://USER@HOST/DB or mysql+pymysql://USER@HOST/DB"


def probe_urls(storage: str | None, tracking_uri: str | None) -> None:
    """Check each URL that is given, as the option that gave it.

    Raises:
        SpecError: naming ``--storage`` or ``--tracking-uri``, when its store cannot be opened.
    """
    if storage:
        probe_storage(storage)
    if tracking_uri:
        probe_tracking_uri(tracking_uri)


def probe_storage(url: str) -> None:
    """An Optuna storage is a database: a SQLite file that can be made, or a server that answers.

    Raises:
        SpecError: naming ``--storage``.
    """
    if not is_database_url(url):
        raise SpecError(f"{redact(url)} is not a database URL; Optuna stores studies in one "
                        f"such as {STORAGE_FORMS}", key="--storage")
    probe_database(url, "--storage")


def probe_tracking_uri(uri: str) -> None:
    """An MLflow tracking URI is a database, a tracking server that answers, or a folder.

    Raises:
        SpecError: naming ``--tracking-uri``.
    """
    if is_database_url(uri):
        probe_database(uri, "--tracking-uri")
        return
    scheme = urlparse(uri).scheme.lower()
    if scheme in SERVER_SCHEMES:
        probe_tracking_server(uri)
    elif scheme in ("", "file"):
        path = url2pathname(urlparse(uri).path) if scheme else uri
        check_creatable(Path(path), "--tracking-uri", folder=True)
    elif scheme not in HOSTED_SCHEMES and scheme not in _plugin_schemes():
        raise SpecError(f"{redact(uri)}: MLflow has no tracking store for the scheme {scheme!r}; "
                        "give a database URL (sqlite:///PATH, postgresql://USER@HOST/DB), an "
                        "http(s):// tracking server or a folder", key="--tracking-uri")


def probe_database(url: str, key: str) -> None:
    """Connect once to a database server (waiting :data:`CONNECT_TIMEOUT_S` at most); for SQLite,
    check that the file can be made, without making it (connecting would)."""
    import sqlalchemy
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    try:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                check_creatable(Path(parsed.database), key, folder=False)
            return
        argument = CONNECT_TIMEOUT_ARGS.get(parsed.get_driver_name())
        engine = sqlalchemy.create_engine(
            parsed, poolclass=NullPool,
            connect_args={argument: CONNECT_TIMEOUT_S} if argument else {})
        try:
            with engine.connect():
                pass
        finally:
            engine.dispose()
    except SpecError:
        raise
    except Exception as exc:  # a bad port, host, database or password: the driver says which
        raise SpecError(f"cannot connect to {redact(url)}: {one_line(exc)}", key=key) from None


def probe_tracking_server(uri: str) -> None:
    """One request to an MLflow tracking server, without MLflow's retries."""
    from mlflow import MlflowClient
    from mlflow.environment_variables import MLFLOW_HTTP_REQUEST_MAX_RETRIES
    from mlflow.environment_variables import MLFLOW_HTTP_REQUEST_TIMEOUT

    try:
        with _environment({MLFLOW_HTTP_REQUEST_MAX_RETRIES.name: "0",
                           MLFLOW_HTTP_REQUEST_TIMEOUT.name: str(CONNECT_TIMEOUT_S)}):
            MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except Exception as exc:  # refused, unknown host, no MLflow there, credentials refused
        raise SpecError(f"MLflow tracking server {redact(uri)} does not answer: "
                        f"{one_line(exc)}", key="--tracking-uri") from None


def check_creatable(path: Path, key: str, *, folder: bool) -> None:
    """Refuse a local store (a SQLite file, an MLflow folder) that cannot be made or written.

    Raises:
        SpecError: naming ``key``.
    """
    path = path.expanduser().absolute()
    kind = "folder" if folder else "database file"
    if path.exists():
        if path.is_dir() != folder:
            raise SpecError(f"{path} is not a {kind}", key=key)
        if not os.access(path, os.W_OK):
            raise SpecError(f"{path} is not writable", key=key)
        return
    ancestor = next(parent for parent in path.parents if parent.exists())
    if not ancestor.is_dir():
        raise SpecError(f"the {kind} {path} cannot be made: {ancestor} is a file", key=key)
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise SpecError(f"the {kind} {path} cannot be made: {ancestor} is not writable", key=key)


def one_line(error: Exception, limit: int = 300) -> str:
    """What went wrong, redacted, on one line: a database error's driver message (SQLAlchemy's
    own wrapping adds a link), shortened in the middle so that the cause at its end stays."""
    text = redact(" ".join(str(getattr(error, "orig", None) or error).split()))
    return text if len(text) <= limit else f"{text[:limit // 3]} ... {text[-2 * limit // 3:]}"


def _plugin_schemes() -> set[str]:
    """Schemes of tracking stores that installed MLflow plugins register."""
    from importlib.metadata import entry_points

    return {entry.name for entry in entry_points(group="mlflow.tracking_store")}


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of a block, then restore them."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
