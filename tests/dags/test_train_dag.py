"""The model DAG end to end: a 2-worker Horovod training job on the real SLURM, registered in PostGIS."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from airflow.utils.state import DagRunState

from tests.compute.synthetic import write_trainset
from tests.dags.helpers import load_dag, query, task_states

pytestmark = pytest.mark.integration


@pytest.fixture
def platform_env(
    pg_schema: dict[str, Any], make_platform: Callable[[dict[str, Any]], Path]
) -> dict[str, Any]:
    aoi = {
        "name": "e2e_model",
        "grid": {"epsg": 32632, "bounds": [600000, 5099360, 600640, 5100000]},
        "first_year": 2021,
        "sources": [{"provider": "local", "path": "/unused/catalog.json"}],
        "reference": {"path": "/unused/ref.tif", "legend": "worldcover"},
        "model": {
            "backend": "tensorflow",
            "architecture": "transformer",
            "epochs": 2,
            "batch_size": 32,
            "layers": 1,
            "hidden": 16,
            "auto_approve": True,
        },
        "hpc": {"tasks_per_node": 2, "time_limit": "00:10:00"},
        "maps": {"window": 5, "median": 3},  # trained on crops of the maps' window
    }
    data = make_platform(aoi)
    (data / "training" / "e2e_model").mkdir(parents=True)
    write_trainset(data / "training" / "e2e_model" / "trainset.h5", samples=400, time_steps=8)
    return {**pg_schema, "data": data}


def test_two_worker_horovod_training_through_the_dag(
    platform_env: dict[str, Any], airflow_connections: None
) -> None:
    run = load_dag("train.py", "train_e2e_model").test()
    assert run.state == DagRunState.SUCCESS
    (model_dir,) = (platform_env["data"] / "models" / "e2e_model").iterdir()
    card = json.loads((model_dir / "model_card.json").read_text())
    assert card["backend"] == "tensorflow" and card["training"]["workers"] == 2
    assert card["training"]["epochs"] == 2 and card["metrics"]["test"]["overall_accuracy"] > 1 / 9
    assert card["training"]["window"] == 5
    assert (model_dir / card["model_file"]).exists()
    rows = query(
        platform_env, "SELECT id, path, backend, slurm_job_id IS NOT NULL, status, reviewed_by FROM model"
    )
    assert rows == [
        (card["model_id"], str(model_dir), "tensorflow", True, "approved", "auto-approve (AOI setting)")
    ]
    states = task_states(run)
    assert states["review_model"] == ["skipped"] and states["decide"] == ["success"]
