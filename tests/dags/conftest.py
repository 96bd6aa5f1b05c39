"""DAG tests see dags/ on sys.path, as Airflow's DAG bundle (dag processor, task runner) puts it there."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg2
import pytest
import yaml

from tests.conftest import REPO
from tests.dags.helpers import point_store_at

if str(REPO / "dags") not in sys.path:
    sys.path.append(str(REPO / "dags"))


@pytest.fixture
def make_platform(
    pg_schema: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[dict[str, Any]], Path]:
    """Points the DAGs at a private AOI folder (holding one AOI), data folder and PostGIS schema.

    Returns a function that writes the AOI (a dict as in its YAML file) and returns the data folder.
    """

    def make(aoi: dict[str, Any]) -> Path:
        aoi_dir = tmp_path / "aois"
        aoi_dir.mkdir(exist_ok=True)
        (aoi_dir / f"{aoi['name']}.yaml").write_text(yaml.safe_dump(aoi))
        point_store_at(pg_schema, monkeypatch)
        monkeypatch.setenv("EO_AOI_DIR", str(aoi_dir))
        monkeypatch.setenv("EO_DATA_DIR", str(tmp_path / "data"))
        return tmp_path / "data"

    return make


def register_cubes(pg: dict[str, Any], aoi: str, cubes: dict[int, Path], composites: int) -> None:
    """Records the AOI's cubes (year → file) in the test's private schema, as preprocessing would."""
    from eo_tasks.store.connection import migrate
    from eo_tasks.store.scenes import SceneCatalog

    conn = psycopg2.connect(**{k: v for k, v in pg.items() if k != "schema"})
    try:
        migrate(conn)
        for year, path in cubes.items():
            SceneCatalog(conn).record_datacube(aoi, year, str(path), f"fp{year}", [], {}, composites)
    finally:
        conn.close()


def scheduler_running() -> bool:
    """Whether the stack's scheduler services (scheduler, DAG processor, triggerer) are up."""
    status = subprocess.run(
        ["bash", str(REPO / "scripts" / "services.sh"), "status", "scheduler"],
        capture_output=True,
        check=False,
    )
    return status.returncode == 0


@pytest.fixture(autouse=True, scope="module")
def _no_second_triggerer(request: pytest.FixtureRequest) -> None:
    """`dag.test()` runs deferred tasks' triggers in-process; a running triggerer would take them too.

    So the scheduler services are stopped for the `dag.test()`-based modules (the scheduler
    end-to-end test, which needs them, starts them itself).
    """
    if getattr(request.module, "USES_SCHEDULER", False) or not scheduler_running():
        return
    subprocess.run(["bash", str(REPO / "scripts" / "services.sh"), "down", "scheduler"], check=True)
