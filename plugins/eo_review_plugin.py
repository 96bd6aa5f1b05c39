"""Registers the change-review UI with Airflow: its FastAPI app and a link in the navigation.

Airflow 3's api-server mounts every plugin's ``fastapi_apps`` under their ``url_prefix``;
``external_views`` with ``destination: nav`` add a menu entry, and a ``url_route`` makes the
Airflow UI show the page inside its own frame at ``/plugin/<url_route>``.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/eo-review"


class EOReviewPlugin(AirflowPlugin):
    """The change-review UI (``plugins/eo_review``)."""

    name = "eo_review"

    @property
    def fastapi_apps(self) -> list[dict[str, object]]:  # type: ignore[override]
        """The app, imported only where Airflow asks for it (the api-server)."""
        from eo_review.app import app

        return [{"app": app, "url_prefix": URL_PREFIX, "name": "EO change review"}]

    external_views = [  # noqa: RUF012  (Airflow's plugin interface is class attributes)
        {
            "name": "Change review",
            "href": f"{URL_PREFIX}/",
            "destination": "nav",
            "category": "browse",
            "url_route": "eo-review",
        }
    ]
