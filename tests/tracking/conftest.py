"""A real ``mlflow server`` shared by the tracking tests that need one (it takes ~20 s to start)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.tracking.test_outage import free_port
from tests.tracking.test_outage import start_server
from tests.tracking.test_outage import stop_server


@dataclass(frozen=True)
class TrackingServer:
    port: int
    folder: Path
    """Its backend store and artifacts: everything it was sent."""


@pytest.fixture(scope="session")
def tracking_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrackingServer]:
    """One server for the session; tests use their own experiment (study) names in it."""
    folder = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    server = start_server(folder, port)
    try:
        yield TrackingServer(port, folder)
    finally:
        stop_server(server)
