"""Every test here runs against the real services."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def _connections(airflow_connections: None) -> None:
    """Hooks used outside a task find the platform's connections (see tests/conftest.py)."""


@pytest.fixture
def conn(pg_schema: dict[str, Any]) -> Iterator[Any]:
    """A psycopg2 connection to a private, migrated schema of the real PostGIS store."""
    import psycopg2

    from eo_tasks.store.connection import migrate

    connection = psycopg2.connect(**{k: v for k, v in pg_schema.items() if k != "schema"})
    migrate(connection)
    yield connection
    connection.close()


@pytest.fixture
def slurm(tmp_path: Path) -> Iterator[Any]:
    """A SLURM client on the platform's HPC login node (the ``eo_hpc`` connection), jobs under tmp_path."""
    from airflow.sdk import Connection

    from eo_tasks.hpc.slurm import ParamikoShell, SlurmClient
    from tests.conftest import REPO

    sys.path.insert(0, str(REPO / "plugins"))
    from eo_slurm import ssh_target

    client = ssh_target(Connection.get("eo_hpc")).connect()
    yield SlurmClient(ParamikoShell(client), str(tmp_path / "jobs"))
    client.close()
