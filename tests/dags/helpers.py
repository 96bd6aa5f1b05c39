"""What the end-to-end DAG tests share: loading a DAG file, task states, queries, the store connection."""

from __future__ import annotations

import json
from typing import Any

import psycopg2
import pytest
from airflow.dag_processing.dagbag import DagBag

from tests.conftest import REPO

PG_ARGS = ("host", "port", "user", "password", "dbname", "options")


def load_dag(file: str, dag_id: str) -> Any:
    """A DAG of a file in dags/, failing on import errors."""
    bag = DagBag(dag_folder=str(REPO / "dags" / file))
    assert bag.import_errors == {}
    return bag.dags[dag_id]


def task_states(run: Any) -> dict[str, list[Any]]:
    """Task id → the states of its (mapped) instances."""
    states: dict[str, list[Any]] = {}
    for ti in run.get_task_instances():
        states.setdefault(ti.task_id, []).append(ti.state)
    return states


def query(pg: dict[str, Any], sql: str) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` in the test's private PostGIS schema."""
    with psycopg2.connect(**{k: v for k, v in pg.items() if k in PG_ARGS}) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def point_store_at(pg: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Makes the DAGs' ``eo_postgis`` connection use the test's private schema."""
    conn = {
        "conn_type": "postgres", "host": pg["host"], "port": pg["port"], "login": pg["user"],
        "password": pg["password"], "schema": pg["dbname"], "extra": {"options": pg["options"]},
    }  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_EO_POSTGIS", json.dumps(conn))
