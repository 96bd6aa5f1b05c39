"""DAG tests see dags/ on sys.path, as Airflow's DAG bundle (dag processor, task runner) puts it there."""

from __future__ import annotations

import sys

from tests.conftest import REPO

if str(REPO / "dags") not in sys.path:
    sys.path.append(str(REPO / "dags"))
