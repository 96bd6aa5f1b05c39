"""Trained models in the store: registered after training, used by the maps only once approved.

A new model is ``pending`` until a person approves it (the ``train_<aoi>`` DAG's review step) or
the AOI auto-approves; the yearly maps take the newest approved model unless a run pins one, and
every ``lc_map`` row records the model it came from.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from eo_tasks.core.errors import CatalogError

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

STATUSES = ("pending", "approved", "rejected")


def record_model(
    conn: PgConnection, model_id: str, aoi: str, path: str, card: dict[str, Any], slurm_job_id: str | None
) -> None:
    """Registers a trained model (``pending``) and its card (``eo_tasks.training.model_card.build_card``).

    Re-registering the same id replaces its files and card and keeps its review status.
    """
    test = (card.get("metrics") or {}).get("test") or {}
    with conn, conn.cursor() as cur:
        cur.execute(
            """
            INSERT INTO model
                (id, aoi, backend, architecture, path, training_set, slurm_job_id, accuracy, card)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (id) DO UPDATE SET path = EXCLUDED.path, card = EXCLUDED.card,
                accuracy = EXCLUDED.accuracy, slurm_job_id = EXCLUDED.slurm_job_id
            """,
            (
                model_id,
                aoi,
                card["backend"],
                card["architecture"]["architecture"],
                path,
                card["training_set"]["path"],
                slurm_job_id,
                test.get("overall_accuracy"),
                json.dumps(card),
            ),
        )


def set_model_status(conn: PgConnection, model_id: str, status: str, reviewer: str) -> None:
    """Records a decision on a model: ``approved`` or ``rejected``, by whom and when.

    Raises:
        CatalogError: No such model, or an unknown status.
    """
    if status not in STATUSES:
        raise CatalogError(f"model status must be one of {STATUSES}, got {status!r}")
    with conn, conn.cursor() as cur:
        cur.execute(
            "UPDATE model SET status = %s, reviewed_by = %s, reviewed_at = %s WHERE id = %s",
            (status, reviewer, dt.datetime.now(dt.UTC), model_id),
        )
        if cur.rowcount != 1:
            raise CatalogError(f"no model with id {model_id!r}")


def approved_model(conn: PgConnection, aoi: str, model_id: str | None = None) -> tuple[str, str] | None:
    """``(id, path)`` of the AOI's newest approved model, or of ``model_id`` if it is approved."""
    with conn, conn.cursor() as cur:
        cur.execute(
            "SELECT id, path FROM model WHERE aoi = %s AND status = 'approved'"
            " AND (%s::text IS NULL OR id = %s) ORDER BY created_at DESC LIMIT 1",
            (aoi, model_id, model_id),
        )
        row = cur.fetchone()
    return None if row is None else (str(row[0]), str(row[1]))


def model_status(conn: PgConnection, model_id: str) -> str | None:
    """A model's review status (None if there is no such model)."""
    with conn, conn.cursor() as cur:
        cur.execute("SELECT status FROM model WHERE id = %s", (model_id,))
        row = cur.fetchone()
    return None if row is None else str(row[0])
