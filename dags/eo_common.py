"""What the platform's DAG files share: connections to the store and to providers, failure notices.

Not a DAG file itself; imports nothing heavy.
"""

from __future__ import annotations

from typing import Any

STORE_CONN_ID = "eo_postgis"


def store_connection() -> Any:
    """A psycopg2 connection to the PostGIS store from the ``eo_postgis`` Airflow connection."""
    from airflow.sdk import Connection

    from eo_tasks.store.connection import connect

    return connect(Connection.get(STORE_CONN_ID))


def scene_catalog() -> Any:
    """The scene catalog on the ``eo_postgis`` connection, schema migrated."""
    from eo_tasks.store.connection import migrate
    from eo_tasks.store.scenes import SceneCatalog

    conn = store_connection()
    migrate(conn)
    return SceneCatalog(conn)


def credentials(conn_id: str | None) -> Any:
    """Provider credentials from an Airflow connection (None when the source needs none)."""
    from airflow.sdk import Connection

    from eo_tasks.ingest.providers import Credentials

    if not conn_id:
        return None
    conn = Connection.get(conn_id)
    return Credentials(login=conn.login, password=conn.password, extra=conn.extra_dejson)


def failure_notifier() -> Any:
    """The failure notifier every DAG attaches (off until the ``eo_alerts`` connection exists)."""
    from eo_notify import FailureNotifier

    return FailureNotifier()
