"""End to end through Airflow: simulated archive → cubes registered in PostGIS → training DAG → training set.

The cubes are built directly (``build_cube``) and registered through the scene catalog, as the
preprocess DAG would; the training DAG then runs with ``dag.test()`` against the real PostGIS in a
private schema, and its outputs are checked against the simulator's truth.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import pytest
import yaml
from airflow.utils.state import DagRunState, TaskInstanceState
from osgeo import gdal

from tests.dags.conftest import register_cubes
from tests.dags.helpers import load_dag, query, simulate_with_cubes, task_states

pytestmark = pytest.mark.integration

YEARS = (2021, 2022)
COMPOSITES = 12
SMALL = {
    "samples_per_year": 1500,
    "min_per_class": 20,
    "max_per_class": 400,
    "split_block_px": 16,
    "forest_trees": 20,
    "block_px": 32,
    "min_cluster_pixels": 20,
}


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 64 x 64 simulated archive of two years and one cube per year (12 composites)."""
    return simulate_with_cubes(tmp_path_factory.mktemp("sim") / "archive", "trainsim", 5, YEARS, COMPOSITES)


@pytest.fixture
def platform_env(
    archive: Path, pg_schema: dict[str, Any], tmp_path: Path, make_platform: Callable[[dict[str, Any]], Path]
) -> dict[str, Any]:
    """A private AOI folder, data folder and PostGIS schema, with both cubes registered."""
    aoi = yaml.safe_load((archive / "aoi.yaml").read_text())
    aoi["name"] = "trainsim"
    aoi["composites_per_year"] = COMPOSITES
    aoi["reference"]["path"] = str(tmp_path / "worldcover.tif")
    shutil.copy(archive / "reference" / "worldcover.tif", tmp_path / "worldcover.tif")
    data = make_platform(aoi)
    register_cubes(
        pg_schema, "trainsim", {y: archive / "cubes" / f"trainsim_{y}.h5" for y in YEARS}, COMPOSITES
    )
    return {**pg_schema, "reference": tmp_path / "worldcover.tif", "training": data / "training"}


def _trainset_dag() -> Any:
    return load_dag("trainset.py", "trainset_trainsim")


def test_trainset_dag_builds_and_registers_the_multi_year_training_set(
    platform_env: dict[str, Any], archive: Path
) -> None:
    run = _trainset_dag().test(run_conf={"trainset": SMALL})

    assert run.state == DagRunState.SUCCESS, task_states(run)
    states = task_states(run)
    assert states["annual"] == [TaskInstanceState.SUCCESS] * 2
    assert states["announce"] == [TaskInstanceState.SUCCESS]

    ((row_id, path, sha256, years, n_samples, report),) = query(
        platform_env, "SELECT id, path, sha256, years, n_samples, report FROM training_set"
    )
    assert years == list(YEARS) and len(sha256) == 64
    training = platform_env["training"] / "trainsim"
    assert Path(path) == training / "trainset.h5"
    with h5py.File(path, "r") as f:
        assert f["features"].shape == (n_samples, COMPOSITES, 15)
        assert sorted(set(f["year"][:].tolist())) == list(YEARS)
        assert f["norm_mean"].shape == f["norm_std"].shape == (15,)
        assert json.loads(f.attrs["source_cubes"])["2022"]["path"].endswith("trainsim_2022.h5")
        rows, cols, labels, year = f["row"][:], f["col"][:], f["labels"][:], f["year"][:]
    # The multi-year set's labels are right more often than the reference map's.
    reference = gdal.Open(str(training / "reference.tif")).ReadAsArray()
    for y in YEARS:
        truth = gdal.Open(str(archive / "truth" / f"landcover_{y}.tif")).ReadAsArray()
        of_year = year == y
        label_accuracy = (labels[of_year] == truth[rows[of_year], cols[of_year]]).mean()
        reference_accuracy = (reference == truth)[reference > 0].mean()
        assert label_accuracy > reference_accuracy + 0.03
    for y in YEARS:
        annual = report["annual"][str(y)]
        assert annual["forest"]["test"]["overall_accuracy"] > 0.5  # 8 scenes, 20 trees: plumbing, not skill
        assert (training / f"rf_map_{y}.tif").exists() and (training / f"rf_map_{y}.png").exists()
        assert (training / f"annual_{y}.h5").exists()
    assert json.loads((training / "report.json").read_text())["multiyear"]["sha256"] == sha256
    assert row_id >= 1


def test_a_reference_code_missing_from_the_legend_fails_the_run_before_any_year(
    platform_env: dict[str, Any], capfd: pytest.CaptureFixture[str]
) -> None:
    reference = gdal.Open(str(platform_env["reference"]), gdal.GA_Update)
    band = reference.GetRasterBand(1)
    codes = band.ReadAsArray()
    codes[10:12, 10:12] = 33  # not a WorldCover code
    band.WriteArray(codes)
    band = reference = None

    dag = _trainset_dag()
    for task in dag.tasks:
        task.retries = 0  # the DAG retries after 2 minutes; a bad legend fails the same way again
    run = dag.test(run_conf={"trainset": SMALL})

    assert run.state == DagRunState.FAILED
    task_log = "".join(capfd.readouterr())
    assert f"reference map {platform_env['reference']}: legend 'worldcover' has no entry" in task_log
    states = task_states(run)
    assert states["reference"] == [TaskInstanceState.FAILED]
    assert TaskInstanceState.SUCCESS not in states.get("annual", [])
    assert query(platform_env, "SELECT count(*) FROM training_set") == [(0,)]
