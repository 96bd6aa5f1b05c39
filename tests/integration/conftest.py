"""Every test here runs against the real services."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", autouse=True)
def airflow_connections(services: dict[str, str]) -> Iterator[None]:
    """Exposes the eo_* connections of Airflow's metadata DB to hooks used outside a task.

    Inside a task the Task SDK fetches connections through the execution API; a plain test
    process has no such API, so the connections created by `services.sh up` are read from the
    metadata DB and handed to the SDK the standard way, as AIRFLOW_CONN_* variables.
    """
    from airflow.models.connection import Connection

    with pytest.MonkeyPatch.context() as mp:
        for conn_id in ("eo_postgis", "eo_hpc"):
            conn = Connection.get_connection_from_secrets(conn_id)
            mp.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", conn.as_json())
        yield
