"""Where studies and runs are stored by default: embedded SQLite files under ``mlruns/``."""

from __future__ import annotations

from dataclasses import dataclass
import os
from pathlib import Path


@dataclass(frozen=True)
class Locations:
    """The Optuna storage URL, MLflow tracking URI and artifact root of one invocation."""

    storage: str
    tracking_uri: str
    artifact_root: str | None
    """Where new experiments keep artifacts; None leaves it to the tracking server."""

    @classmethod
    def resolve(cls, home: str | Path = "mlruns", storage: str | None = None,
                tracking_uri: str | None = None) -> Locations:
        """Defaults: ``sqlite:///<home>/optuna.db`` and ``sqlite:///<home>/mlflow.db``.

        ``MLFLOW_TRACKING_URI`` is honoured when no tracking URI is given.
        """
        home = Path(home).resolve()
        tracking_uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        return cls(
            storage=storage or f"sqlite:///{home / 'optuna.db'}",
            tracking_uri=tracking_uri or f"sqlite:///{home / 'mlflow.db'}",
            artifact_root=None if tracking_uri else (home / "artifacts").as_uri(),
        )

    def prepare(self) -> None:
        """Create the folders the embedded stores need (only once the spec is valid)."""
        for url in (self.storage, self.tracking_uri):
            if url.startswith("sqlite:///"):
                Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
