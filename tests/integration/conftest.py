"""Every test here runs against the real services."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

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


@pytest.fixture
def pg_schema(services: dict[str, str]) -> Iterator[dict[str, Any]]:
    """A private schema in the real PostGIS store, dropped afterwards.

    Yields psycopg2 connect() arguments whose search_path puts the schema first, so the
    platform's migrations create their tables there and tests never see each other's rows.
    """
    import uuid
    from pathlib import Path

    import psycopg2

    schema = f"test_{uuid.uuid4().hex[:12]}"
    args: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": int(services["EO_PG_PORT"]),
        "user": services["EO_PG_USER"],
        "password": (Path(services["EO_RUN_DIR"]) / "postgres.password").read_text().strip(),
        "dbname": services["EO_PG_DB"],
    }
    with psycopg2.connect(**args) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE SCHEMA {schema}")
    yield {**args, "options": f"-c search_path={schema},public", "schema": schema}
    with psycopg2.connect(**args) as conn, conn.cursor() as cur:
        cur.execute(f"DROP SCHEMA {schema} CASCADE")
