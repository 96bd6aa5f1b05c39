"""Extra links on the platform's task pages: from a yearly map's tasks to its change review.

Registered as global operator extra links (every task is offered them; they return a URL only where
they apply, and an empty string elsewhere, which the UI hides). The SLURM job link lives with the
SLURM operator (``eo_slurm.py``).
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin
from airflow.sdk import BaseOperatorLink

REVIEW_PREFIX = "/eo-review"


class ChangeReviewLink(BaseOperatorLink):
    """The change-review page of the AOI whose yearly map a ``maps_<aoi>`` task makes."""

    name = "Change review"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        """``/eo-review/aoi/<aoi>`` for the tasks of ``maps_<aoi>``; nothing elsewhere."""
        dag_id = str(ti_key.dag_id)
        if not dag_id.startswith("maps_") or ti_key.task_id not in ("assemble", "infer"):
            return ""
        return f"{REVIEW_PREFIX}/aoi/{dag_id.removeprefix('maps_')}"


class EOLinksPlugin(AirflowPlugin):
    """The platform's extra links."""

    name = "eo_links"
    global_operator_extra_links = [ChangeReviewLink()]  # noqa: RUF012  (Airflow's plugin interface)
