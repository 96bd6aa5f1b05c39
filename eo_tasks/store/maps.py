"""Yearly maps and change polygons in PostGIS: all SQL on the lc_map and lc_change tables."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eo_tasks.core.grid import GridSpec

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection


@dataclass(frozen=True)
class ChangeRegion:
    """One connected permanent-change region, as a polygon row.

    Attributes:
        wkt: MultiPolygon in the grid's CRS.
        from_class: Class before the change (majority over the region).
        to_class: Class after the change (majority over the region).
        change_date: Estimated date (median over the region).
        area_m2: Area in square metres.
    """

    wkt: str
    from_class: int
    to_class: int
    change_date: dt.date
    area_m2: float


def replace_year(
    conn: PgConnection,
    aoi: str,
    year: int,
    cog_path: str,
    model_id: str | None,
    areas: dict[str, float],
    grid: GridSpec,
    changes: Sequence[ChangeRegion],
) -> int:
    """Replaces the AOI's map row and change rows of ``year`` in one transaction.

    A change that comes back with the same classes over the same place keeps its review.

    Returns:
        The number of change rows written.
    """
    xmin, ymin, xmax, ymax = grid.bounds
    footprint = f"POLYGON(({xmin} {ymin},{xmax} {ymin},{xmax} {ymax},{xmin} {ymax},{xmin} {ymin}))"
    with conn, conn.cursor() as cur:
        cur.execute(
            "CREATE TEMP TABLE previous_review ON COMMIT DROP AS SELECT geom, from_class, to_class, status, "
            "new_class, reviewed_by, reviewed_at FROM lc_change "
            "WHERE aoi = %s AND year = %s AND status <> 'pending'",
            (aoi, year),
        )
        cur.execute("DELETE FROM lc_change WHERE aoi = %s AND year = %s", (aoi, year))
        cur.execute(
            """
            INSERT INTO lc_map (aoi, year, cog_path, model_id, class_areas_ha, footprint)
            VALUES (%s, %s, %s, %s, %s, ST_Transform(ST_GeomFromText(%s, %s), 4326))
            ON CONFLICT (aoi, year) DO UPDATE SET cog_path = EXCLUDED.cog_path, model_id = EXCLUDED.model_id,
                class_areas_ha = EXCLUDED.class_areas_ha, footprint = EXCLUDED.footprint, created_at = now()
            """,
            (aoi, year, cog_path, model_id, json.dumps(areas), footprint, grid.epsg),
        )
        for change in changes:
            cur.execute(
                """
                INSERT INTO lc_change (aoi, year, geom, from_class, to_class, change_date, area_m2)
                VALUES (%s, %s, ST_Multi(ST_Transform(ST_GeomFromText(%s, %s), 4326)), %s, %s, %s, %s)
                """,
                (
                    aoi,
                    year,
                    change.wkt,
                    grid.epsg,
                    change.from_class,
                    change.to_class,
                    change.change_date,
                    change.area_m2,
                ),
            )
        cur.execute(
            """
            UPDATE lc_change c SET status = p.status, new_class = p.new_class, reviewed_by = p.reviewed_by,
                reviewed_at = p.reviewed_at
            FROM previous_review p
            WHERE c.aoi = %s AND c.year = %s AND c.from_class = p.from_class AND c.to_class = p.to_class
              AND ST_Area(ST_Intersection(c.geom, p.geom)) > 0.5 * ST_Area(c.geom)
            """,
            (aoi, year),
        )
    return len(changes)


def map_cog_path(conn: PgConnection, aoi: str, year: int) -> str | None:
    """The COG of the AOI's stored map of ``year``, or None if that year has no map."""
    with conn, conn.cursor() as cur:
        cur.execute("SELECT cog_path FROM lc_map WHERE aoi = %s AND year = %s", (aoi, year))
        row = cur.fetchone()
    return None if row is None else str(row[0])


def map_summaries(conn: PgConnection, aoi: str) -> list[tuple[int, dict[str, float], str | None]]:
    """``(year, class areas in ha, model id)`` of each of the AOI's maps, by year."""
    with conn, conn.cursor() as cur:
        cur.execute("SELECT year, class_areas_ha, model_id FROM lc_map WHERE aoi = %s ORDER BY year", (aoi,))
        return [(int(y), dict(a), m) for y, a, m in cur.fetchall()]


def change_summaries(conn: PgConnection, aoi: str) -> dict[int, tuple[int, float, Any, Any]]:
    """Per map year: ``(polygons, hectares, first change date, last change date)``."""
    with conn, conn.cursor() as cur:
        cur.execute(
            "SELECT year, count(*), round((sum(area_m2) / 1e4)::numeric, 1), min(change_date), "
            "max(change_date) FROM lc_change WHERE aoi = %s GROUP BY year ORDER BY year",
            (aoi,),
        )
        return {int(row[0]): (int(row[1]), float(row[2]), row[3], row[4]) for row in cur.fetchall()}
