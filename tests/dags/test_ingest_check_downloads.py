"""An ingest run that quarantines a scene fails its final ``check_downloads`` task, saying which and why.

A tiny simulated archive (3 Sentinel-2 scenes, checksums published, and 1 Landsat scene
relabelled Landsat-7) with one band corrupted on the hub's side: ``dag.test()`` runs the real
ingest DAG against the real PostGIS. The
scenes that arrived are announced (Asset event) and ready; the corrupted one is quarantined; the
last task fails and its message names the scene and the checksum mismatch, so the run is not a
silent success. The Landsat-7 scene is refused by platform policy: only counted, not a failure.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from airflow.utils.state import DagRunState, TaskInstanceState

from eo_tasks.core.aoi import AOIConfig
from tests.dags.helpers import load_dag, query, task_states

pytestmark = pytest.mark.integration


def test_quarantined_scene_fails_the_run_after_the_others_are_announced(
    tmp_path: Path,
    pg_schema: dict[str, Any],
    make_platform: Callable[[dict[str, Any]], Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from eo_simulator import ScenarioConfig, simulate

    archive = tmp_path / "archive"
    config = {"seed": 3, "width": 32, "height": 32, "years": [2022], "s2_per_year": 3, "l8_per_year": 1}
    simulate(ScenarioConfig.from_dict(config), archive)
    items = sorted(p for p in archive.glob("sentinel-2-l2a/*/*.json"))
    clear = [p for p in items if json.loads(p.read_text())["properties"]["eo:cloud_cover"] <= 40]
    bad = clear[0].parent
    red = bad / "red.tif"
    data = bytearray(red.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, other bytes: the published checksum no longer matches
    red.write_bytes(bytes(data))
    (landsat,) = archive.glob("landsat-c2-l2/*/*.json")  # relabelled Landsat-7: refused by policy
    item = json.loads(landsat.read_text())
    item["properties"]["platform"] = "landsat-7"
    landsat.write_text(json.dumps(item))
    aoi = yaml.safe_load((archive / "aoi.yaml").read_text())
    aoi["name"] = "qcheck"
    make_platform(aoi)
    source = AOIConfig.from_dict(aoi, check_crs=False).sources[0].key  # scene ids: <source>/<item id>

    dag = load_dag("ingest.py", "ingest_qcheck")
    dag.get_task("download").partial_kwargs["retries"] = 0  # no 30 s back-off waits in the test
    caplog.set_level(logging.INFO, logger="eo_tasks.ingest.pipeline")
    run = dag.test()
    states = task_states(run)
    assert run.state == DagRunState.FAILED
    assert states["announce"] == [TaskInstanceState.SUCCESS]  # the scenes that arrived were announced
    assert states["check_downloads"] == [TaskInstanceState.FAILED]
    assert TaskInstanceState.FAILED in states["download"]
    rows = dict(query(pg_schema, "SELECT id, state FROM scene"))
    assert rows[f"{source}/{bad.name}"] == "quarantined"
    assert sum(1 for s in rows.values() if s == "ready") == len(rows) - 1
    # the task log: the counts, then the scene and why
    fetched = len(rows) - 1
    assert f"qcheck: {fetched} scenes fetched, 1 quarantined or failed, 1 refused by policy" in caplog.text
    assert f"{source}/{bad.name} [quarantined]: " in caplog.text and "!= published" in caplog.text
    reason = query(pg_schema, f"SELECT reason FROM scene WHERE id = '{source}/{bad.name}'")[0][0]
    assert "red.tif" in reason and "!= published" in reason
