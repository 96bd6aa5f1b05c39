"""End-to-end run of the platform_health DAG against the real PostGIS and SLURM."""

from __future__ import annotations

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.utils.state import DagRunState, TaskInstanceState

from tests.conftest import REPO


@pytest.mark.integration
def test_platform_health_dag_runs_green(services: dict[str, str]) -> None:
    dag = DagBag(dag_folder=str(REPO / "dags" / "platform_health.py")).dags["platform_health"]
    run = dag.test()
    assert run.state == DagRunState.SUCCESS
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states == {
        "aoi_files": TaskInstanceState.SUCCESS,
        "postgis_version": TaskInstanceState.SUCCESS,
        "hpc_probe_job": TaskInstanceState.SUCCESS,
    }
    probe = next(ti for ti in run.get_task_instances() if ti.task_id == "hpc_probe_job")
    assert sorted(line.split()[1] for line in probe.xcom_pull(task_ids="hpc_probe_job").splitlines()) == [
        "0",
        "1",
    ]
