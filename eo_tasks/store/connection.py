"""Connecting to the PostGIS store and migrating its schema (SQL files shipped as package data)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

log = logging.getLogger(__name__)
_MIGRATION_LOCK = 727_001  # advisory lock id: one migrator at a time

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class ConnectionFields(Protocol):
    """What the store needs of a connection definition (an Airflow ``Connection`` has these)."""

    host: str | None
    port: int | None
    login: str | None
    password: str | None
    schema: str | None

    @property
    def extra_dejson(self) -> dict[str, Any]:
        """The connection's extras."""
        ...


def connect(fields: ConnectionFields, **options: Any) -> PgConnection:
    """A psycopg2 connection to the store from a connection definition (its libpq extras included).

    psycopg2, not PostgresHook, which hands out psycopg 3 connections: the platform relies on
    psycopg2's transaction semantics (``with conn:`` commits and keeps the connection open).

    Args:
        fields: Host, port, login, password, database (``schema``) and extras.
        **options: More ``psycopg2.connect`` arguments, e.g. ``connect_timeout``.
    """
    import psycopg2

    extra = {k: v for k, v in fields.extra_dejson.items() if k in ("options", "sslmode", "sslrootcert")}
    return psycopg2.connect(
        host=fields.host,
        port=fields.port or 5432,
        user=fields.login,
        password=fields.password,
        dbname=fields.schema,
        **extra,
        **options,
    )


def migrate(conn: PgConnection, migrations_dir: Path = MIGRATIONS_DIR) -> list[str]:
    """Applies the SQL migrations that the database has not seen yet.

    Args:
        conn: An open connection; each migration commits on its own.
        migrations_dir: Folder of ``NNNN_name.sql`` files.

    Returns:
        The versions applied by this call.
    """
    applied: list[str] = []
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
        try:
            cur.execute(
                "CREATE TABLE IF NOT EXISTS schema_migration "
                "(version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            conn.commit()
            cur.execute("SELECT version FROM schema_migration")
            done = {row[0] for row in cur.fetchall()}
            for path in sorted(migrations_dir.glob("*.sql")):
                if path.stem in done:
                    continue
                cur.execute(path.read_text())
                cur.execute("INSERT INTO schema_migration (version) VALUES (%s)", (path.stem,))
                conn.commit()
                applied.append(path.stem)
                log.info("applied migration %s", path.stem)
        except Exception:
            conn.rollback()
            raise
        finally:
            cur.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))
            conn.commit()
    return applied


def postgis_version(conn: PgConnection) -> str:
    """PostGIS's full version string (the store's health check)."""
    with conn, conn.cursor() as cur:
        cur.execute("SELECT postgis_full_version()")
        return str(cur.fetchone()[0])
