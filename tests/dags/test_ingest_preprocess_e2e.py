"""End to end through Airflow: a simulated archive → ingest DAG → PostGIS catalog → preprocess DAG → cube.

Runs the real DAGs with ``dag.test()`` against the real PostGIS (in a private schema) and checks
the cube's reflectances against the simulator's truth.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from airflow.utils.state import DagRunState, TaskInstanceState

from eo_tasks.core.aoi_sections import SourceSpec
from eo_tasks.core.cube import Cube
from tests.dags.helpers import load_dag, query, task_states

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from eo_simulator import ScenarioConfig, simulate

    root = tmp_path_factory.mktemp("sim") / "archive"
    config = ScenarioConfig.from_dict(
        {"seed": 3, "width": 64, "height": 64, "years": [2022], "s2_per_year": 10, "l8_per_year": 4}
    )
    simulate(config, root)
    return root


@pytest.fixture
def platform_env(
    archive: Path, pg_schema: dict[str, Any], make_platform: Callable[[dict[str, Any]], Path]
) -> dict[str, Any]:
    """Points the DAGs at a private AOI folder, data folder and PostGIS schema."""
    aoi = yaml.safe_load((archive / "aoi.yaml").read_text())
    aoi["name"] = "e2e"
    aoi["composites_per_year"] = 12
    make_platform(aoi)
    return pg_schema


def _assert_matches_truth(archive: Path, reflectance: np.ndarray, band_names: list[str]) -> None:
    """Open water that never changed must look like the simulator's water spectrum, all year, every band.

    Water is the one surface without phenology, so its composites (clouds masked, Landsat
    harmonized, gaps filled) should sit within the sensor noise of the end-member spectrum.
    """
    from osgeo import gdal

    from eo_simulator.spectra import ENDMEMBERS, S2_BAND_INDEX
    from eo_tasks.core.classes import CLASS_BY_NAME

    truth = gdal.Open(str(archive / "truth" / "landcover_2022.tif")).ReadAsArray()
    changed = gdal.Open(str(archive / "truth" / "change_mask.tif")).ReadAsArray() > 0
    water = (truth == CLASS_BY_NAME["water"].code) & ~changed
    # Interior water only: shores mix water with the land around it.
    for axis in (0, 1):
        for shift in (-2, -1, 1, 2):
            water &= np.roll(truth == CLASS_BY_NAME["water"].code, shift, axis=axis)
    assert water.sum() >= 10, "the scenario has no open water to compare"
    expected = np.array([ENDMEMBERS["water"][S2_BAND_INDEX[b]] for b in band_names])
    observed = np.median(reflectance[:, water, :], axis=(0, 1))
    np.testing.assert_allclose(observed, expected, atol=0.01)  # sensor noise sigma is 0.006
    assert np.percentile(reflectance[:, water, :], 99) < 0.15, "cloud leaked into the composites"


def test_simulated_archive_through_ingest_and_preprocess(platform_env: dict[str, Any], archive: Path) -> None:
    ingest = load_dag("ingest.py", "ingest_e2e")
    run = ingest.test()
    assert run.state == DagRunState.SUCCESS
    states = task_states(run)
    assert set(states["download"]) == {TaskInstanceState.SUCCESS}
    assert states["announce"] == [TaskInstanceState.SUCCESS]
    assert states["check_downloads"] == [TaskInstanceState.SUCCESS]  # nothing quarantined: the run is ok

    items = [
        json.loads(p.read_text()) for p in archive.glob("*/*/*.json") if p.parent.parent.name != "reference"
    ]
    cloudy = [i["id"] for i in items if i["properties"]["eo:cloud_cover"] > 40]
    expected = len(items) - len(cloudy)
    assert query(platform_env, "SELECT state, count(*) FROM scene GROUP BY state") == [("ready", expected)]
    skipped = query(platform_env, "SELECT scene_id, reason FROM scene_skip ORDER BY 1")
    source = SourceSpec(provider="local", collections=(), path=str(archive / "catalog.json"))
    assert [s[0] for s in skipped] == sorted(f"{source.key}/{c}" for c in cloudy)  # ids scoped by source
    assert all("cloud cover" in s[1] for s in skipped)

    # A second run finds everything known: nothing new, nothing downloaded, no Asset event.
    again = ingest.test()
    assert again.state == DagRunState.SUCCESS
    states = task_states(again)
    assert states["announce"] == [TaskInstanceState.SKIPPED]
    assert states["check_downloads"] == [TaskInstanceState.SUCCESS]  # runs after a skipped announce
    assert query(platform_env, "SELECT count(*) FROM scene") == [(expected,)]

    preprocess = load_dag("preprocess.py", "preprocess_e2e")
    run = preprocess.test()
    assert run.state == DagRunState.SUCCESS, task_states(run)
    (path, n_scenes), *_ = query(platform_env, "SELECT path, cardinality(scenes) FROM datacube")
    assert n_scenes == expected
    cube = Cube.open(Path(path))
    assert cube.shape == (12, 64, 64, 10)
    reflectance, valid = cube.read()
    assert np.isfinite(reflectance).all()
    assert valid.mean() > 0.3  # most composites saw the surface; the rest were gap-filled
    _assert_matches_truth(archive, reflectance, cube.band_names)
    # Every used scene is 'used' now; nothing is rebuilt when nothing changed.
    assert query(platform_env, "SELECT DISTINCT state FROM scene") == [("used",)]
    built = query(platform_env, "SELECT year, created_at FROM datacube")
    again = preprocess.test()
    assert again.state == DagRunState.SUCCESS
    assert task_states(again)["build_cube"] == [TaskInstanceState.SKIPPED]  # mapped over no year
    assert query(platform_env, "SELECT year, created_at FROM datacube") == built
    shutil.rmtree(Path(path).parent)
