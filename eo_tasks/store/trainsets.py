"""Training sets in the PostGIS catalog: where each one is, what it was built from, and how it scored.

Rows are never replaced: every build adds one, so a model can record the id (and the file's
SHA-256) of the training set it learned from even after the file has been rebuilt. The DAG reads
the cubes it needs from the ``datacube`` table the preprocessing stage fills.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from eo_tasks.core.errors import CatalogError
from eo_tasks.store.scenes import SceneCatalog

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection


def registered_cubes(conn: PgConnection, aoi: str) -> dict[int, str]:
    """Year → path of every usable datacube of an AOI: registered, and its file matches its checksum.

    A cube whose file no longer matches is marked for rebuild (``SceneCatalog.verify_datacube``)
    and left out, so a training set is never built from a corrupt cube.
    """
    catalog = SceneCatalog(conn)
    with conn, conn.cursor() as cur:
        cur.execute("SELECT year, path FROM datacube WHERE aoi = %s ORDER BY year", (aoi,))
        found = {int(year): str(path) for year, path in cur.fetchall()}
    return {year: path for year, path in found.items() if catalog.verify_datacube(aoi, year) is None}


def record_training_set(
    conn: PgConnection, report: dict[str, Any], annual_reports: dict[int, dict[str, Any]]
) -> int:
    """Registers a multi-year training set.

    Args:
        conn: An open psycopg2 connection (committed here).
        report: The multi-year report of :func:`~eo_tasks.trainset.multiyear.build_multiyear` (path,
            SHA-256, years, source cubes, reference, legend, config, samples per class and year).
        annual_reports: Year → the annual report (forest accuracy, filter counts, map paths).

    Returns:
        The new row's id.
    """
    with conn, conn.cursor() as cur:
        cur.execute(
            """
            INSERT INTO training_set (aoi, path, sha256, years, source_cubes, reference, legend, n_samples,
                                      samples_per_class, config, report)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            RETURNING id
            """,
            (
                report["aoi"],
                report["path"],
                report["sha256"],
                list(report["years"]),
                json.dumps(report["source_cubes"]),
                report["reference"],
                report["legend"],
                report["samples"],
                json.dumps(report["samples_per_class_and_year"]),
                json.dumps(report["config"]),
                json.dumps({"multiyear": report, "annual": {str(y): r for y, r in annual_reports.items()}}),
            ),
        )
        row = cur.fetchone()
    if row is None:
        raise CatalogError(f"{report['aoi']}: inserting the training set returned no id")
    return int(row[0])


def latest_training_set(conn: PgConnection, aoi: str) -> dict[str, Any] | None:
    """The AOI's newest training set: id, path, sha256, years, n_samples and created_at."""
    with conn, conn.cursor() as cur:
        cur.execute(
            "SELECT id, path, sha256, years, n_samples, created_at FROM training_set "
            "WHERE aoi = %s ORDER BY created_at DESC, id DESC LIMIT 1",
            (aoi,),
        )
        row = cur.fetchone()
    if row is None:
        return None
    keys = ("id", "path", "sha256", "years", "n_samples", "created_at")
    return dict(zip(keys, row, strict=True))
