"""Where studies and runs are stored by default: embedded SQLite files under ``mlruns/``.

Database URLs are checked for their driver when they are resolved (a missing one is a
:class:`~framework.errors.SpecError` naming the package to install, before anything exists), and
the stores are opened under a file lock, with retries: two invocations started together on a new
home (or another program opening the same storage) would otherwise both create the same tables.
"""

from __future__ import annotations

from collections.abc import Callable
import contextlib
import dataclasses
from dataclasses import dataclass
import os
from pathlib import Path
import random
import shutil
import time
from typing import TypeVar

from framework.errors import SpecError
from framework.tracking.redact import redact


DATABASE_DIALECTS = ("sqlite", "postgresql", "mysql", "mariadb", "mssql", "oracle")
"""URL schemes (before any ``+driver``) that SQLAlchemy opens, for Optuna and for MLflow."""
DRIVER_PACKAGES = {
    "psycopg": "psycopg[binary]",
    "psycopg2": "psycopg2-binary",
    "pg8000": "pg8000",
    "asyncpg": "asyncpg",
    "pymysql": "pymysql",
    "mysqldb": "mysqlclient",
    "mysqlconnector": "mysql-connector-python",
    "mariadbconnector": "mariadb",
    "pyodbc": "pyodbc",
    "oracledb": "oracledb",
}
"""SQLAlchemy driver name -> the pip package that provides it."""
CREATE_ATTEMPTS = 4
"""Tries at creating a store's tables, which another program may be creating at once."""
TEMPLATE_DIR_ENV = "DROPOUT_LAB_CACHE"
"""Folder for the pre-migrated MLflow store that new SQLite homes start from."""
T = TypeVar("T")


@dataclass(frozen=True)
class Locations:
    """The Optuna storage URL, MLflow tracking URI and artifact root of one invocation."""

    storage: str
    tracking_uri: str
    artifact_root: str | None
    """Where new experiments keep artifacts (see :func:`artifact_root`); None leaves it to the
    tracking store."""
    home: Path | None = None
    """The ``--home`` folder of the default stores; None when URLs name every store."""

    @classmethod
    def resolve(cls, home: str | Path = "mlruns", storage: str | None = None,
                tracking_uri: str | None = None, artifacts: str | None = None) -> Locations:
        """Defaults: ``sqlite:///<home>/optuna.db``, ``sqlite:///<home>/mlflow.db`` and the
        artifact root of :func:`artifact_root` (``artifacts``: the ``--artifacts`` option).

        ``MLFLOW_TRACKING_URI`` is honoured when no tracking URI is given.

        Raises:
            SpecError: naming ``--storage`` or ``--tracking-uri``, when the URL's database
                driver is not installed or its store cannot be opened (each given URL is
                tried once, in seconds: :mod:`framework.tracking.probe`); naming ``--home``,
                when it is used and is a file or under one.
        """
        home = Path(home).resolve()
        tracking_uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        if storage:
            check_driver(storage, "--storage")
        if tracking_uri:
            check_driver(tracking_uri, "--tracking-uri")
        if not (storage and tracking_uri):
            check_home(home)
        probe_given_urls(storage, tracking_uri)
        return cls(
            storage=storage or f"sqlite:///{home / 'optuna.db'}",
            tracking_uri=tracking_uri or f"sqlite:///{home / 'mlflow.db'}",
            artifact_root=artifact_root(home, tracking_uri, artifacts),
            home=None if storage and tracking_uri else home,
        )

    def with_artifacts(self, artifacts: str | None) -> Locations:
        """These stores with new experiments' artifacts at ``artifacts`` (``--artifacts``);
        unchanged when None.

        Raises:
            SpecError: naming ``--artifacts``, as :func:`artifact_root`.
        """
        if not artifacts:
            return self
        return dataclasses.replace(self, artifact_root=artifact_location(artifacts))

    def prepare(self) -> None:
        """Create the stores' folders and tables (only once the spec is valid).

        Idempotent and safe to run from several processes at once: SQLite stores are created
        under a lock file beside the database, server databases with retries.
        """
        for url, option in ((self.storage, "--storage"), (self.tracking_uri, "--tracking-uri")):
            if url.startswith("sqlite:///"):
                self._make_folder(Path(url.removeprefix("sqlite:///")).parent, option)
        from framework.tuning.storage import make_storage

        make_storage(self.storage).engine.dispose()  # the tables stay; reopened later
        if is_database_url(self.tracking_uri):  # a tracking server creates its own
            create_once(self.tracking_uri, _create_mlflow_tables)

    def _make_folder(self, folder: Path, option: str) -> None:
        """Create a SQLite store's folder; where that fails (a read-only place, a virtual file
        system such as ``/proc``), nothing was created, and the option is named."""
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SpecError(f"cannot create the folder {folder}: {exc.strerror or exc}",
                            key="--home" if folder == self.home else option) from None


def probe_given_urls(storage: str | None, tracking_uri: str | None) -> None:
    """Open each URL given once, before anything is created (see :mod:`framework.tracking.probe`,
    imported here: it builds on this module)."""
    from framework.tracking.probe import probe_urls

    probe_urls(storage, tracking_uri)


def artifact_root(home: Path, tracking_uri: str | None, artifacts: str | None) -> str | None:
    """Where new experiments keep their artifacts; an existing experiment keeps the location it
    was created with (MLflow fixes it then), whatever later invocations are given.

    ``artifacts`` (``--artifacts``) when given. Otherwise ``<home>/artifacts`` for the default
    stores and for a database tracking URI: MLflow's own default there is ``./mlruns`` of
    whatever folder the command runs in, where studies tracked in different databases would
    mix (their experiment numbers collide). None for a tracking server, which keeps its own.

    Raises:
        SpecError: naming ``--artifacts`` when it names a file; naming ``--home`` when the
            artifacts go there and it cannot be a folder.
    """
    if artifacts:
        return artifact_location(artifacts)
    if tracking_uri and not is_database_url(tracking_uri):
        return None
    check_home(home)
    return (home / "artifacts").as_uri()


def artifact_location(location: str) -> str:
    """The URI of an ``--artifacts`` location: a URI as given (``s3://bucket/path``,
    ``file:///...``), a folder as an absolute ``file://`` URI (the runs may be read from
    another working directory).

    Raises:
        SpecError: naming ``--artifacts``, when the folder is a file or below one.
    """
    if "://" in location or location.startswith("file:"):
        return location.rstrip("/")
    folder = Path(location).expanduser().resolve()
    check_home(folder, key="--artifacts")
    return folder.as_uri()


def check_home(home: Path, key: str = "--home") -> None:
    """Refuse a ``--home`` (or another folder given as option ``key``) that cannot be a folder,
    before anything is created.

    Raises:
        SpecError: naming ``key``, when it is a file or below one.
    """
    if home.exists() and not home.is_dir():
        raise SpecError(f"{home} is a file, not a folder for the stores", key=key)
    ancestor = next(parent for parent in home.parents if parent.exists())
    if not ancestor.is_dir():
        raise SpecError(f"{home} cannot be a folder: {ancestor} is a file", key=key)


def is_database_url(url: str) -> bool:
    """Whether SQLAlchemy opens ``url`` (``sqlite:///``, ``postgresql+psycopg://``, ...)."""
    scheme, sep, _ = url.partition("://")
    return bool(sep) and scheme.split("+")[0].lower() in DATABASE_DIALECTS


def check_driver(url: str, key: str) -> None:
    """Import the DBAPI module that SQLAlchemy would use for ``url``, as creating it would.

    Raises:
        SpecError: naming ``key`` and the package to install, when the module is missing.
    """
    if not is_database_url(url):
        return
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
        dialect = parsed.get_dialect()
    except ArgumentError as exc:  # includes NoSuchModuleError: an unknown +driver
        raise SpecError(f"{redact(url)} is not a database URL SQLAlchemy can open: "
                        f"{redact(str(exc))}", key=key) from None
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        driver = parsed.get_driver_name()
        package = DRIVER_PACKAGES.get(driver, exc.name or driver)
        raise SpecError(
            f"{redact(url)} needs the {parsed.get_backend_name()} driver {driver!r}, which is "
            f"not installed ({exc}); install it with `pip install '{package}'`", key=key,
        ) from None


def create_once(url: str, create: Callable[[str], T]) -> T:
    """``create(url)``, where ``create`` may make the database's tables, safe when run at once."""
    lock: contextlib.AbstractContextManager = contextlib.nullcontext()
    if url.startswith("sqlite:///"):
        from filelock import FileLock

        lock = FileLock(f"{url.removeprefix('sqlite:///')}.lock")
    # The lock keeps this project's processes apart; it cannot stop another program (a server
    # database's other clients, or ``optuna.load_study`` on the same SQLite file) from creating
    # the tables at the same moment. That collision shows as "already exists", and a later try
    # finds the tables made.
    with lock:
        for _ in range(CREATE_ATTEMPTS - 1):
            try:
                return create(url)
            except ImportError:
                raise
            except Exception:
                time.sleep(0.5 + random.random())
        return create(url)


def _create_mlflow_tables(url: str) -> None:
    from mlflow import MlflowClient

    if url.startswith("sqlite:///"):
        _copy_template(Path(url.removeprefix("sqlite:///")))
    # Opening the store creates and migrates its tables (a copied template needs neither).
    MlflowClient(tracking_uri=url)


def template_dir() -> Path:
    """Where the pre-migrated store template is kept: ``$DROPOUT_LAB_CACHE``, else
    ``dropout-lab`` in the user's cache folder (``$XDG_CACHE_HOME`` or ``~/.cache``)."""
    if os.environ.get(TEMPLATE_DIR_ENV):
        return Path(os.environ[TEMPLATE_DIR_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dropout-lab"


def _copy_template(path: Path) -> None:
    """Start a new SQLite MLflow store at ``path`` as a copy of an empty, migrated one.

    Creating MLflow's tables runs its whole chain of schema migrations (1-2 s, far more on a
    loaded machine) in every new home; the template is made once per MLflow version and copied
    after that. Anything that goes wrong leaves the store to MLflow, as without a template.
    """
    if path.exists():
        return
    from importlib.metadata import version

    from filelock import FileLock

    try:
        template = template_dir() / f"mlflow-{version('mlflow')}.db"
        if not template.exists():
            template.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(f"{template}.lock"):
                if not template.exists():
                    _build_mlflow_template(template)
        partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        shutil.copyfile(template, partial)
        partial.replace(path)  # a reader never sees half a database
    except Exception:  # an unwritable cache, a changed MLflow internal: MLflow creates it
        return


def _build_mlflow_template(template: Path) -> None:
    """MLflow's tables at their latest migration, with no experiment (the copy's first opening
    adds the Default experiment, with that home's artifact root)."""
    from mlflow.store.db.utils import _initialize_tables  # what the store runs on an empty DB
    import sqlalchemy

    partial = template.with_name(f"{template.name}.{os.getpid()}.tmp")
    partial.unlink(missing_ok=True)
    engine = sqlalchemy.create_engine(f"sqlite:///{partial}")
    try:
        _initialize_tables(engine)
    finally:
        engine.dispose()
    partial.replace(template)
