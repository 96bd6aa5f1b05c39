"""What the end-to-end DAG tests share: loading a DAG file, task states, queries, the store connection."""

from __future__ import annotations

import json
from pathlib import Path
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
        "conn_type": "postgres",
        "host": pg["host"],
        "port": pg["port"],
        "login": pg["user"],
        "password": pg["password"],
        "schema": pg["dbname"],
        "extra": {"options": pg["options"]},
    }
    monkeypatch.setenv("AIRFLOW_CONN_EO_POSTGIS", json.dumps(conn))


def simulate_with_cubes(root: Path, name: str, seed: int, years: tuple[int, ...], composites: int) -> Path:
    """A 64 x 64 simulated archive under ``root`` and one cube per year in ``root/cubes/<name>_<year>.h5``.

    The cubes are built directly (``build_cube``) from the archive's scenes, as the preprocess DAG
    would; the DAG tests then register them in their private schema.
    """

    from eo_simulator import ScenarioConfig, simulate
    from eo_tasks.core.aoi import AOIConfig
    from eo_tasks.core.calendar import Calendar
    from eo_tasks.core.scenes import SceneInput
    from eo_tasks.ingest.providers.base import SearchQuery
    from eo_tasks.ingest.providers.stac import LocalArchiveProvider
    from eo_tasks.preprocess.datacube import CubeSpec, build_cube

    config = ScenarioConfig.from_dict(
        {"seed": seed, "width": 64, "height": 64, "years": list(years), "s2_per_year": 8, "l8_per_year": 2}
    )
    simulate(config, root)
    aoi = AOIConfig.load(root / "aoi.yaml")
    provider = LocalArchiveProvider(str(root / "catalog.json"))
    for year in years:
        search = SearchQuery.calendar_year(aoi.grid.footprint_wgs84(), year)
        scenes = [SceneInput.in_place(r) for r in provider.search(search)]
        spec = CubeSpec(aoi=name, grid=aoi.grid, year=year, calendar=Calendar(composites))
        build_cube(scenes, spec, root / "cubes" / f"{name}_{year}.h5")
    return root
