"""Dask workers start even when the parent's ``__main__`` cannot be re-imported (Airflow 3 task processes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# A stand-in for the `airflow` entry point inside a task process: importing it again in a child
# process fails, as Airflow's does there (it parses a database URL the task process is not given).
ENTRY = """
if __name__ == "__mp_main__":  # multiprocessing's spawn re-imports the main module under this name
    raise RuntimeError("a child re-imported the parent's __main__")
from distributed import Client, LocalCluster
from eo_tasks.core.processes import detached_main
from eo_tasks.preprocess.cluster import dask_client

if __name__ == "__main__":
    if "{mode}" == "platform":
        with dask_client(1) as client:
            print("sum", client.submit(sum, [1, 2]).result())
    else:
        with LocalCluster(n_workers=1, dashboard_address=None) as cluster, Client(cluster) as c:
            print("sum", c.submit(sum, [1, 2]).result())
"""


def _run(tmp_path: Path, mode: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / f"entry_{mode}.py"
    script.write_text(ENTRY.replace("{mode}", mode))
    return subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=180, check=False, cwd=tmp_path
    )


def test_workers_start_without_re_importing_the_main_module(tmp_path: Path) -> None:
    result = _run(tmp_path, "platform")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "sum 3" in result.stdout


def test_a_plain_local_cluster_dies_there(tmp_path: Path) -> None:
    """The control: without detached_main the worker process re-imports the entry point and dies."""
    result = _run(tmp_path, "plain")
    assert result.returncode != 0
    assert "re-imported the parent's __main__" in result.stderr
