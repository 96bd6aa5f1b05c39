"""Policy tests every DAG must pass: it imports, it is documented, owned, tagged and retried."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
HEAVY_MODULES = ("tensorflow", "keras", "torch", "horovod", "sklearn", "dask", "distributed", "osgeo", "h5py")


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    return DagBag(dag_folder=str(DAGS_DIR))


def test_dagbag_imports_without_errors(dagbag: DagBag) -> None:
    assert dagbag.import_errors == {}
    assert dagbag.dags, "no DAGs found"


def test_every_dag_follows_the_policy(dagbag: DagBag) -> None:
    for dag_id, dag in dagbag.dags.items():
        assert dag.owner and dag.owner != "airflow", f"{dag_id}: set default_args['owner']"
        assert dag.tags, f"{dag_id}: no tags"
        assert dag.doc_md and len(dag.doc_md.strip()) > 40, f"{dag_id}: doc_md missing"
        assert dag.start_date is not None, f"{dag_id}: no fixed start_date"
        for t in dag.tasks:
            assert t.retries >= 1, f"{dag_id}.{t.task_id}: retries must be >= 1"


@pytest.mark.parametrize("dag_file", sorted(DAGS_DIR.glob("*.py")), ids=lambda p: p.name)
def test_dag_file_does_not_import_heavy_modules(dag_file: Path) -> None:
    code = (
        "import json, os, runpy, sys; sys.path.append(os.path.dirname(sys.argv[1])); "
        "runpy.run_path(sys.argv[1]); "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(dag_file)], capture_output=True, text=True, check=True
    )
    loaded = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert not loaded & set(HEAVY_MODULES), (
        f"{dag_file.name} imports {sorted(loaded & set(HEAVY_MODULES))} at parse time"
    )
