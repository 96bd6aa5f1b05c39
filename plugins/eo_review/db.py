"""The review UI's connection to the PostGIS store; its queries live in ``eo_tasks.store.review``.

Kept apart from the web app so every query can be tested against the real database without a
browser or an HTTP client. Writes go through ``eo_tasks.maps.review.apply_review`` only: it records the
decision and rewrites the maps in one transaction. Geometry leaves PostGIS as GeoJSON in EPSG:4326.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eo_tasks.core.classes import CLASSES
from eo_tasks.store.connection import connect, migrate

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

STORE_CONN_ID = "eo_postgis"
_MIGRATED: set[str] = set()  # connections migrated by this process


def connect_store(conn_id: str = STORE_CONN_ID) -> PgConnection:
    """A psycopg2 connection to the store from an Airflow connection, schema migrated.

    The api-server is no task, so the Task SDK's ``Connection.get`` is not available there; the
    core model reads the connection from the secrets backends (``AIRFLOW_CONN_*`` variables, then
    the metadata database); ``eo_tasks.store.connection.connect`` makes the psycopg2 connection, as for tasks.

    Args:
        conn_id: The Airflow connection of the PostGIS store.

    Returns:
        An open connection (migrations applied once per process); the caller closes it.
    """
    from airflow.models.connection import Connection

    pg = connect(Connection.get_connection_from_secrets(conn_id), connect_timeout=10)
    if conn_id not in _MIGRATED:  # a fresh store has no lc_map yet: an empty list beats an error page
        migrate(pg)
        _MIGRATED.add(conn_id)
    return pg


def class_legend() -> list[dict[str, Any]]:
    """The platform's classes as ``{code, name, color}`` for the page's legend and relabel menu."""
    return [{"code": c.code, "name": c.name, "color": c.color} for c in CLASSES]
