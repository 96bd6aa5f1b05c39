"""The yearly-map DAG end to end: two years through the real SLURM (job arrays) and PostGIS.

A simulated 64 x 64 AOI with two yearly cubes registered and a small model trained here (PyTorch, one
epoch: the plumbing is under test; the method's accuracy is the demo's and ``eo-tasks evaluate``'s).
Then: year 1, year 2, a re-run of year 2 (replaces, never duplicates), and a year-2 run whose
inference job fails (the stored map and rows stay as they were).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
import pendulum
import psycopg2
import pytest
import yaml
from airflow.utils.state import DagRunState
from osgeo import gdal

from eo_tasks.core.raster import read_raster
from eo_tasks.maps.outputs import MapPaths
from eo_tasks.store.models import record_model, set_model_status
from tests.compute.synthetic import write_trainset
from tests.conftest import REPO
from tests.dags.conftest import register_cubes
from tests.dags.helpers import load_dag, query, simulate_with_cubes, task_states

pytestmark = pytest.mark.integration

YEARS = (2021, 2022)
COMPOSITES = 12
MAPS = {"window": 7, "median": 3, "ath": 10, "block_px": 32, "array_tasks": 3, "lag_days": 0}


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A simulated archive of two years with one 12-composite cube per year."""
    return simulate_with_cubes(tmp_path_factory.mktemp("sim") / "archive", "mapsim", 3, YEARS, COMPOSITES)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small PyTorch Transformer on the cubes' ten bands, trained by the platform's entry point."""
    root = tmp_path_factory.mktemp("model")
    trainset = write_trainset(root / "trainset.h5", samples=600, time_steps=COMPOSITES, n_features=10)
    out = root / "model"
    subprocess.run(
        [
            str(REPO / ".venv-compute" / "bin" / "python"),
            "-m",
            "eo_tasks.training",
            "--trainset",
            str(trainset),
            "--out",
            str(out),
            "--backend",
            "pytorch",
            "--arch",
            "transformer",
            "--epochs",
            "1",
            "--batch-size",
            "64",
            "--layers",
            "1",
            "--hidden",
            "16",
        ],
        check=True,
        cwd=REPO,
        capture_output=True,
    )
    return out


@pytest.fixture
def platform_env(
    archive: Path, model_dir: Path, pg_schema: dict[str, Any], make_platform: Callable[[dict[str, Any]], Path]
) -> dict[str, Any]:
    """A private AOI folder, data folder and PostGIS schema with both cubes and the model registered."""
    aoi = yaml.safe_load((archive / "aoi.yaml").read_text())
    aoi.update(name="mapsim", composites_per_year=COMPOSITES, maps=MAPS)
    aoi["hpc"] = {"time_limit": "00:10:00"}
    data = make_platform(aoi)
    cubes = {}
    for year in YEARS:
        cubes[year] = data / "cubes" / "mapsim" / f"mapsim_{year}.h5"
        cubes[year].parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(archive / "cubes" / f"mapsim_{year}.h5", cubes[year])
    register_cubes(pg_schema, "mapsim", cubes, COMPOSITES)
    card = json.loads((model_dir / "model_card.json").read_text())
    with closing(psycopg2.connect(**{k: v for k, v in pg_schema.items() if k != "schema"})) as conn:
        record_model(conn, card["model_id"], "mapsim", str(model_dir), card, None)
        set_model_status(conn, card["model_id"], "approved", "test")
    return {**pg_schema, "data": data}


def _run_year(year: int, fail_fast: bool = False) -> Any:
    dag = load_dag("maps.py", "maps_mapsim")
    if fail_fast:
        for task in dag.tasks:
            task.retries = 0
    return dag.test(logical_date=pendulum.datetime(year, 1, 1, tz="UTC"))


def test_two_years_then_a_rerun_then_a_failed_run(
    platform_env: dict[str, Any], model_dir: Path, airflow_connections: None
) -> None:
    data = platform_env["data"]
    for year in YEARS:
        run = _run_year(year)
        assert run.state == DagRunState.SUCCESS, task_states(run)

    rows = query(platform_env, "SELECT year, cog_path, model_id IS NOT NULL FROM lc_map ORDER BY year")
    assert [(r[0], r[2]) for r in rows] == [(2021, True), (2022, True)]
    first, second = (read_raster(Path(r[1])) for r in rows)
    changes = MapPaths.for_year(data, "mapsim", 2022).changes
    assert Path(rows[1][1]) == MapPaths.for_year(data, "mapsim", 2022).classes  # lc_map, CURRENT agree
    changed = read_raster(changes) > 0
    # Consecutive maps differ exactly where a permanent change was found; every change has a polygon.
    np.testing.assert_array_equal(
        first != second, changed & (read_raster(changes, 2) != read_raster(changes, 3))
    )
    assert np.array_equal(second[changed], read_raster(changes, 3)[changed])
    n_changes = query(platform_env, "SELECT count(*) FROM lc_change WHERE year = 2022")[0][0]
    assert n_changes == int(np.max(_label_regions(changed), initial=0))
    assert query(platform_env, "SELECT count(*) FROM lc_change WHERE status <> 'pending'")[0][0] == 0

    # Outputs: COG with colour table, quicklooks, and a STAC catalog linking both years to the model.
    assert gdal.Open(rows[1][1]).GetRasterBand(1).GetRasterColorTable() is not None
    for year in YEARS:
        paths = MapPaths.for_year(data, "mapsim", year)
        assert paths.classes_png.stat().st_size > 0 and paths.changes_png.stat().st_size > 0
        assert not paths.labels.exists() or len(list(paths.labels.iterdir())) == 1
    catalog = json.loads((data / "maps" / "mapsim" / "catalog.json").read_text())
    assert [link["href"] for link in catalog["links"] if link["rel"] == "item"] == [
        "./2021/mapsim_2021.json",
        "./2022/mapsim_2022.json",
    ]
    item = json.loads((data / "maps" / "mapsim" / "2022" / "mapsim_2022.json").read_text())
    derived = [link["href"] for link in item["links"] if link["rel"] == "derived_from"]
    assert any(href.endswith("model_card.json") for href in derived)
    assert any(href.endswith("mapsim_2021.h5") for href in derived)
    assert item["properties"]["eo_platform:scenes"]  # the cubes' scenes

    # A re-run replaces the year: same map, same number of change rows, no duplicates.
    before = query(platform_env, "SELECT created_at FROM lc_map WHERE year = 2022")
    assert _run_year(2022).state == DagRunState.SUCCESS
    assert query(platform_env, "SELECT count(*) FROM lc_map")[0][0] == 2
    assert query(platform_env, "SELECT count(*) FROM lc_change WHERE year = 2022")[0][0] == n_changes
    assert query(platform_env, "SELECT created_at FROM lc_map WHERE year = 2022") != before
    [(rerun_path,)] = query(platform_env, "SELECT cog_path FROM lc_map WHERE year = 2022")
    assert rerun_path != rows[1][1] and not Path(rows[1][1]).exists()  # a new version; the old one removed
    versions = [p.name for p in (data / "maps" / "mapsim" / "2022").iterdir() if p.name.startswith("v")]
    assert versions == [Path(rerun_path).parent.name]
    np.testing.assert_array_equal(read_raster(Path(rerun_path)), second)

    # A broken model makes the inference job fail: the year's map and rows stay as they were.
    snapshot = query(platform_env, "SELECT year, cog_path, created_at FROM lc_map ORDER BY year")
    broken = data / "models" / "broken"  # a newer model whose weights file is missing
    broken.mkdir(parents=True)
    card = {
        **json.loads((model_dir / "model_card.json").read_text()),
        "model_id": "broken",
        "model_file": "gone.pt",
    }
    (broken / "model_card.json").write_text(json.dumps(card))
    with closing(
        psycopg2.connect(**{k: v for k, v in platform_env.items() if k not in ("schema", "data")})
    ) as conn:
        record_model(conn, "broken", "mapsim", str(broken), card, None)
        set_model_status(conn, "broken", "approved", "test")
    failed = _run_year(2022, fail_fast=True)
    assert failed.state == DagRunState.FAILED
    assert "failed" in [str(s) for s in task_states(failed)["infer"]]
    assert query(platform_env, "SELECT year, cog_path, created_at FROM lc_map ORDER BY year") == snapshot
    assert query(platform_env, "SELECT count(*) FROM lc_change WHERE year = 2022")[0][0] == n_changes
    np.testing.assert_array_equal(read_raster(Path(rerun_path)), second)


def _label_regions(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    return ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))[0]
