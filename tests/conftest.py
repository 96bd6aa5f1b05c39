"""Shared fixtures: paths of the repo and the private services from scripts/services.sh."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="session")
def services() -> dict[str, str]:
    """The environment of the running service stack.

    Under `make test` (EO_REQUIRE_SERVICES=1) a missing service is a failure, never a skip.
    """
    needed = {"postgres": "EO_PG_PORT", "sshd": "EO_SSH_PORT", "slurmctld": "EO_SLURMCTLD_PORT"}
    missing = [
        name for name, var in needed.items() if var not in os.environ or not _port_open(int(os.environ[var]))
    ]
    if missing:
        message = f"services not running: {', '.join(missing)} (run `make services-up`)"
        if os.environ.get("EO_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return dict(os.environ)


@pytest.fixture
def pg_schema(services: dict[str, str]) -> Iterator[dict[str, Any]]:
    """A private schema in the real PostGIS store, dropped afterwards.

    Yields psycopg2 connect() arguments whose search_path puts the schema first, so the
    platform's migrations create their tables there and tests never see each other's rows.
    """
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


@pytest.fixture(scope="session")
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
