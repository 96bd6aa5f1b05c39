"""What the change-review page reads from the store and what a review writes: lc_map and lc_change."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from eo_tasks.core.classes import CLASS_BY_CODE

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection
    from psycopg2.extensions import cursor as PgCursor

STATUSES = ("pending", "approved", "rejected")


def _iso(value: dt.date | dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def list_aois(conn: PgConnection) -> list[dict[str, Any]]:
    """Every AOI with maps: its years and how many changes wait for review.

    Args:
        conn: The store.

    Returns:
        One dict per AOI (``aoi``, ``years``, ``pending``, ``approved``, ``rejected``), by name.
    """
    with conn, conn.cursor() as cur:
        cur.execute(
            """
            SELECT m.aoi, array_agg(DISTINCT m.year ORDER BY m.year),
                   count(c.id) FILTER (WHERE c.status = 'pending'),
                   count(c.id) FILTER (WHERE c.status = 'approved'),
                   count(c.id) FILTER (WHERE c.status = 'rejected')
            FROM lc_map m LEFT JOIN lc_change c ON c.aoi = m.aoi AND c.year = m.year
            GROUP BY m.aoi ORDER BY m.aoi
            """
        )
        return [
            {"aoi": aoi, "years": list(years), "pending": p, "approved": a, "rejected": r}
            for aoi, years, p, a, r in cur.fetchall()
        ]


def list_maps(conn: PgConnection, aoi: str) -> list[dict[str, Any]]:
    """The AOI's annual maps with the bounds they are drawn on (empty if the AOI has none).

    The footprint's envelope in Web Mercator bounds the map's tiles (``eo_review.tiles``: tiles
    outside it are empty), and its corners in latitude/longitude are where Leaflet fits the view.

    Args:
        conn: The store.
        aoi: AOI name.

    Returns:
        One dict per year: ``year``, ``cog_path``, ``class_areas_ha``, ``created_at``,
        ``extent_3857`` (xmin, ymin, xmax, ymax) and ``bounds`` (``[[south, west], [north, east]]``).
    """
    with conn, conn.cursor() as cur:
        cur.execute(
            """
            SELECT year, cog_path, class_areas_ha, created_at,
                   ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e),
                   ST_Y(sw), ST_X(sw), ST_Y(ne), ST_X(ne)
            FROM (
                SELECT *, ST_Transform(ST_SetSRID(ST_MakePoint(ST_XMin(e), ST_YMin(e)), 3857), 4326) AS sw,
                          ST_Transform(ST_SetSRID(ST_MakePoint(ST_XMax(e), ST_YMax(e)), 3857), 4326) AS ne
                FROM (SELECT *, ST_Envelope(ST_Transform(footprint, 3857)) AS e FROM lc_map WHERE aoi = %s) m
            ) m ORDER BY year
            """,
            (aoi,),
        )
        return [
            {
                "year": year,
                "cog_path": cog_path,
                "class_areas_ha": areas,
                "created_at": _iso(created),
                "extent_3857": [x0, y0, x1, y1],
                "bounds": [[s, w], [n, e]],
            }
            for year, cog_path, areas, created, x0, y0, x1, y1, s, w, n, e in cur.fetchall()
        ]


def changes_geojson(
    conn: PgConnection, aoi: str, year: int | None = None, status: str | None = None
) -> dict[str, Any]:
    """The AOI's change polygons as a GeoJSON FeatureCollection, optionally filtered.

    Args:
        conn: The store.
        aoi: AOI name.
        year: Only changes detected in this map year.
        status: Only changes with this review status (``pending``, ``approved``, ``rejected``).

    Returns:
        Features with ``id`` and properties: dates, classes (codes, names, colours), status and review.
    """
    with conn, conn.cursor() as cur:
        cur.execute(
            """
            SELECT id, ST_AsGeoJSON(geom, 7)::json, year, change_date, from_class, to_class, new_class,
                   area_m2, status, reviewed_by, reviewed_at
            FROM lc_change
            WHERE aoi = %(aoi)s AND (%(year)s::int IS NULL OR year = %(year)s)
              AND (%(status)s::text IS NULL OR status = %(status)s)
            ORDER BY change_date, id
            """,
            {"aoi": aoi, "year": year, "status": status},
        )
        rows = cur.fetchall()
    features = []
    for cid, geom, year_, date, from_c, to_c, new_c, area, status_, by, at in rows:
        shown_to = new_c if new_c is not None else to_c
        features.append(
            {
                "type": "Feature",
                "id": cid,
                "geometry": geom,
                "properties": {
                    "id": cid,
                    "year": year_,
                    "change_date": _iso(date),
                    "from_class": from_c,
                    "to_class": to_c,
                    "new_class": new_c,
                    "from_name": CLASS_BY_CODE[from_c].name if from_c in CLASS_BY_CODE else str(from_c),
                    "to_name": CLASS_BY_CODE[shown_to].name if shown_to in CLASS_BY_CODE else str(shown_to),
                    "to_color": CLASS_BY_CODE[shown_to].color if shown_to in CLASS_BY_CODE else "#000000",
                    "area_m2": area,
                    "status": status_,
                    "reviewed_by": by,
                    "reviewed_at": _iso(at),
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


def change_stats(conn: PgConnection, aoi: str) -> dict[str, Any]:
    """What the charts show: class area per map year and changes per month of their date.

    Args:
        conn: The store.
        aoi: AOI name.

    Returns:
        ``areas``: ``{year: {class name: ha}}``; ``per_month``: ``[{month: "YYYY-MM", pending,
        approved, rejected}]`` in date order.
    """
    with conn, conn.cursor() as cur:
        cur.execute("SELECT year, class_areas_ha FROM lc_map WHERE aoi = %s ORDER BY year", (aoi,))
        areas = {str(year): dict(ha) for year, ha in cur.fetchall()}
        cur.execute(
            """
            SELECT to_char(date_trunc('month', change_date), 'YYYY-MM') AS month, status, count(*)
            FROM lc_change WHERE aoi = %s GROUP BY 1, 2 ORDER BY 1
            """,
            (aoi,),
        )
        months: dict[str, dict[str, int]] = {}
        for month, status, n in cur.fetchall():
            months.setdefault(month, dict.fromkeys(STATUSES, 0))[status] = n
    return {"areas": areas, "per_month": [{"month": m, **counts} for m, counts in months.items()]}


def change_row(conn: PgConnection, change_id: int) -> dict[str, Any] | None:
    """One change's review state (``None`` if there is no such change)."""
    with conn, conn.cursor() as cur:
        cur.execute(
            "SELECT id, aoi, year, status, new_class, reviewed_by, reviewed_at FROM lc_change WHERE id = %s",
            (change_id,),
        )
        row = cur.fetchone()
    if row is None:
        return None
    names = ("id", "aoi", "year", "status", "new_class", "reviewed_by", "reviewed_at")
    out = dict(zip(names, row, strict=True))
    out["reviewed_at"] = _iso(out["reviewed_at"])
    return out


# --- what a review writes (inside the caller's transaction: eo_tasks.maps.review.apply_review) -------
CHANGE_FIELDS = ("aoi", "year", "from_class", "to_class", "new_class", "status", "change_date")


def lock_change(cur: PgCursor, change_id: int) -> dict[str, Any] | None:
    """The change's row (:data:`CHANGE_FIELDS`), locked until the transaction ends; None if absent."""
    cur.execute(f"SELECT {', '.join(CHANGE_FIELDS)} FROM lc_change WHERE id = %s FOR UPDATE", (change_id,))
    found = cur.fetchone()
    return None if found is None else dict(zip(CHANGE_FIELDS, found, strict=True))


def lock_maps_from(cur: PgCursor, aoi: str, first_year: int) -> list[tuple[int, str]]:
    """``(year, cog_path)`` of the AOI's maps from ``first_year`` on, locked in year order.

    Concurrent reviews of one map would otherwise each rewrite the COG from the same old pixels,
    and the later write would undo the earlier review.
    """
    cur.execute(
        "SELECT year, cog_path FROM lc_map WHERE aoi = %s AND year >= %s ORDER BY year FOR UPDATE",
        (aoi, first_year),
    )
    return [(int(year), str(path)) for year, path in cur.fetchall()]


def change_wkt(cur: PgCursor, change_id: int, epsg: int) -> str:
    """The change's polygon as WKT in ``epsg``."""
    cur.execute("SELECT ST_AsText(ST_Transform(geom, %s)) FROM lc_change WHERE id = %s", (epsg, change_id))
    return str(cur.fetchone()[0])


def set_class_areas(cur: PgCursor, aoi: str, year: int, areas_ha: dict[str, float]) -> None:
    """Replaces a map's class areas (after a review rewrote its pixels)."""
    cur.execute(
        "UPDATE lc_map SET class_areas_ha = %s WHERE aoi = %s AND year = %s",
        (json.dumps(areas_ha), aoi, year),
    )


def record_review(cur: PgCursor, change_id: int, status: str, new_class: int | None, reviewer: str) -> None:
    """Records a decision: status, the new class of a relabel, who and when."""
    cur.execute(
        "UPDATE lc_change SET status = %s, new_class = %s, reviewed_by = %s, reviewed_at = %s WHERE id = %s",
        (status, new_class, reviewer, dt.datetime.now(dt.UTC), change_id),
    )


def change_map_years(conn: PgConnection, change_id: int) -> tuple[str, list[int]] | None:
    """``(aoi, years)`` of the maps a review of the change may rewrite (from its first year on).

    The first year is the earlier of its detection year and its date's year. None if there is no
    such change. Read without locks: the review locks these years before its transaction.
    """
    with conn, conn.cursor() as cur:
        cur.execute(
            """
            SELECT c.aoi, array_agg(m.year ORDER BY m.year) FILTER (WHERE m.year IS NOT NULL)
            FROM lc_change c
            LEFT JOIN lc_map m ON m.aoi = c.aoi AND m.year >= least(c.year, extract(year FROM c.change_date))
            WHERE c.id = %s GROUP BY c.aoi
            """,
            (change_id,),
        )
        row = cur.fetchone()
    return None if row is None else (str(row[0]), [int(y) for y in row[1] or []])
