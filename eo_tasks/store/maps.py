"""Yearly maps and change polygons in PostGIS: all SQL on the lc_map and lc_change tables.

One writer per AOI-year (a session advisory lock, :func:`year_lock`); a year is replaced in one
transaction (:func:`year_transaction`) that updates the changes in place, so a change keeps its
id and its review across re-runs (:func:`sync_changes`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eo_tasks.core.errors import CatalogError, ConcurrentRunError, ServiceUnavailableError
from eo_tasks.core.grid import GridSpec

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection
    from psycopg2.extensions import cursor as PgCursor

log = logging.getLogger(__name__)
YEAR_LOCK_WAIT_S = 900.0  # how long a second writer of one AOI-year waits for the first
LOCK_POLL_S = 0.5


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


def year_lock_key(aoi: str, year: int) -> tuple[str, int]:
    """The advisory-lock key of an AOI-year's map: ``hashtext('lc_map:<aoi>')`` and the year."""
    return f"lc_map:{aoi}", year


@contextmanager
def year_lock(conn: PgConnection, aoi: str, year: int, wait_s: float = YEAR_LOCK_WAIT_S) -> Iterator[None]:
    """Holds the session advisory lock of an AOI-year: one writer of a year's map at a time.

    The lock is re-entrant within one connection and dies with the session, so a killed run
    never leaves it behind. A second run waits up to ``wait_s`` seconds, then fails.

    Raises:
        ConcurrentRunError: Another run still holds the lock after ``wait_s`` seconds.
        ServiceUnavailableError: The store cannot be reached.
    """
    import psycopg2

    name, key = year_lock_key(aoi, year)
    deadline, waited = time.monotonic() + wait_s, False
    try:
        while True:
            with conn, conn.cursor() as cur:
                cur.execute("SELECT pg_try_advisory_lock(hashtext(%s), %s)", (name, key))
                if cur.fetchone()[0]:
                    break
            if time.monotonic() >= deadline:
                raise ConcurrentRunError(
                    f"another run is writing the map of {aoi} {year} (advisory lock {name}/{key} held "
                    f"for more than {wait_s:.0f} s): this run stored nothing; retry once it has finished"
                )
            if not waited:
                log.warning("%s %d: another run is writing this year's map; waiting for it", aoi, year)
                waited = True
            time.sleep(LOCK_POLL_S)
    except (psycopg2.OperationalError, psycopg2.InterfaceError) as err:
        raise ServiceUnavailableError(
            f"PostGIS unreachable while locking the map of {aoi} {year}: {err}"
        ) from err
    try:
        yield
    finally:
        try:
            with conn, conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(hashtext(%s), %s)", (name, key))
        except psycopg2.Error:
            pass  # the connection is gone: the server released the session's locks with it


@contextmanager
def year_transaction(conn: PgConnection, aoi: str, year: int) -> Iterator[PgCursor]:
    """One transaction that replaces an AOI-year: its change rows and maps locked first.

    The change rows from ``year`` on (their review decides the year's pixels) are locked before
    the map rows, in the order reviews lock them (:mod:`eo_tasks.store.review`), so a review and
    a re-run of the same year queue instead of deadlocking or overwriting each other.

    Raises:
        ServiceUnavailableError: The connection was lost (nothing was committed, unless the
            commit itself was under way: the caller keeps the new files then).
        CatalogError: PostGIS refused a row (an invalid polygon, a constraint); rolled back.
    """
    import psycopg2

    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                "SELECT id FROM lc_change WHERE aoi = %s AND year >= %s ORDER BY id FOR UPDATE", (aoi, year)
            )
            cur.execute(
                "SELECT year FROM lc_map WHERE aoi = %s AND year >= %s ORDER BY year FOR UPDATE", (aoi, year)
            )
            yield cur
    except (psycopg2.OperationalError, psycopg2.InterfaceError) as err:
        raise ServiceUnavailableError(
            f"lost the PostGIS connection while replacing the map of {aoi} {year}: "
            f"the transaction was rolled back, the previous map stays current ({err})".strip()
        ) from err
    except psycopg2.DatabaseError as err:
        raise CatalogError(
            f"PostGIS refused the rows of the map of {aoi} {year}; nothing was switched: {err}".strip()
        ) from err


def upsert_map(
    cur: PgCursor,
    aoi: str,
    year: int,
    cog_path: str,
    model_id: str | None,
    areas: dict[str, float],
    grid: GridSpec,
) -> None:
    """Inserts or replaces the ``lc_map`` row of an AOI-year (inside the caller's transaction)."""
    xmin, ymin, xmax, ymax = grid.bounds
    footprint = f"POLYGON(({xmin} {ymin},{xmax} {ymin},{xmax} {ymax},{xmin} {ymax},{xmin} {ymin}))"
    cur.execute(
        """
        INSERT INTO lc_map (aoi, year, cog_path, model_id, class_areas_ha, footprint)
        VALUES (%s, %s, %s, %s, %s, ST_Transform(ST_GeomFromText(%s, %s), 4326))
        ON CONFLICT (aoi, year) DO UPDATE SET cog_path = EXCLUDED.cog_path, model_id = EXCLUDED.model_id,
            class_areas_ha = EXCLUDED.class_areas_ha, footprint = EXCLUDED.footprint, created_at = now()
        """,
        (aoi, year, cog_path, model_id, json.dumps(areas), footprint, grid.epsg),
    )


_GEOM = "ST_Multi(ST_Transform(ST_GeomFromText(%(wkt)s, %(epsg)s), 4326))"


def _same_change(cur: PgCursor, values: dict[str, Any], which: str) -> int | None:
    """The stored change (``which``: an SQL condition on ``c``) with the region's classes covering it.

    Same change: same classes, and the intersection covers more than half of both polygons.
    """
    cur.execute(
        f"""
        SELECT c.id FROM lc_change c, (SELECT {_GEOM} AS g) n
        WHERE c.aoi = %(aoi)s AND c.from_class = %(from)s AND c.to_class = %(to)s AND {which}
          AND ST_Area(ST_Intersection(c.geom, n.g)) > 0.5 * GREATEST(ST_Area(c.geom), ST_Area(n.g))
        ORDER BY ST_Area(ST_Intersection(c.geom, n.g)) DESC, c.id LIMIT 1
        """,
        values,
    )
    found = cur.fetchone()
    return None if found is None else int(found[0])


def sync_changes(
    cur: PgCursor, aoi: str, year: int, grid: GridSpec, changes: Sequence[ChangeRegion]
) -> list[int]:
    """Makes the year's change rows those of ``changes``, keeping every change's id and review.

    A detected region that overlaps a stored change of the same year with the same classes by
    more than half of both areas is that change: its row is updated in place (same id, same
    review). A region that is a change rejected in an earlier year's map, found again because
    the rejection put the old class back (same classes and place, dated no later than that
    year), is inserted already rejected, with the reviewer and time of the rejection. Other
    regions are inserted as ``pending``. Stored changes of the year no longer detected are
    deleted if pending; a reviewed one is kept (an approved change carried back into the
    previous year's map is not detected again, and its review must survive).

    Returns:
        The row id of each region, in order.
    """
    ids: list[int] = []
    for change in changes:
        values = {
            "aoi": aoi,
            "year": year,
            "wkt": change.wkt,
            "epsg": grid.epsg,
            "from": change.from_class,
            "to": change.to_class,
            "date": change.change_date,
            "area": change.area_m2,
            "taken": ids,
        }
        same = _same_change(cur, values, "c.year = %(year)s AND NOT c.id = ANY(%(taken)s::bigint[])")
        if same is not None:
            cur.execute(
                f"UPDATE lc_change SET geom = {_GEOM}, change_date = %(date)s, area_m2 = %(area)s "
                "WHERE id = %(id)s RETURNING id",
                {**values, "id": same},
            )
        else:
            rejected = _same_change(
                cur,
                values,
                "c.year < %(year)s AND c.status = 'rejected' AND %(date)s <= make_date(c.year, 12, 31)",
            )
            cur.execute(
                f"""
                INSERT INTO lc_change (aoi, year, geom, from_class, to_class, change_date, area_m2,
                                       status, reviewed_by, reviewed_at)
                SELECT %(aoi)s, %(year)s, {_GEOM}, %(from)s, %(to)s, %(date)s, %(area)s,
                       coalesce(r.status, 'pending'), r.reviewed_by, r.reviewed_at
                FROM (SELECT 1) one LEFT JOIN lc_change r ON r.id = %(rejected)s
                RETURNING id
                """,
                {**values, "rejected": rejected},
            )
        ids.append(int(cur.fetchone()[0]))
    cur.execute(
        "DELETE FROM lc_change WHERE aoi = %s AND year = %s AND status = 'pending' "
        "AND NOT id = ANY(%s::bigint[])",
        (aoi, year, ids),
    )
    return ids


def reviewed_changes(cur: PgCursor, aoi: str, year: int, epsg: int) -> list[dict[str, Any]]:
    """The AOI's reviewed changes detected in ``year`` or later (their decision sets the year's pixels).

    Returns:
        Dicts with ``id``, ``year``, ``wkt`` (in ``epsg``), ``from_class``, ``to_class``,
        ``new_class``, ``status``, ``change_date``, by id.
    """
    cur.execute(
        """
        SELECT id, year, ST_AsText(ST_Transform(geom, %s)), from_class, to_class, new_class, status,
               change_date
        FROM lc_change WHERE aoi = %s AND year >= %s AND status <> 'pending' ORDER BY id
        """,
        (epsg, aoi, year),
    )
    names = ("id", "year", "wkt", "from_class", "to_class", "new_class", "status", "change_date")
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def pending_changes(conn: PgConnection, aoi: str, year: int, epsg: int) -> list[dict[str, Any]]:
    """The AOI's unreviewed changes detected in ``year`` (the next year confirms or withdraws them).

    Returns:
        Dicts with ``id``, ``wkt`` (in ``epsg``), ``from_class``, ``to_class``, ``change_date``, by id.
    """
    with conn, conn.cursor() as cur:
        cur.execute(
            """
            SELECT id, ST_AsText(ST_Transform(geom, %s)), from_class, to_class, change_date
            FROM lc_change WHERE aoi = %s AND year = %s AND status = 'pending' ORDER BY id
            """,
            (epsg, aoi, year),
        )
        names = ("id", "wkt", "from_class", "to_class", "change_date")
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


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

    Changes keep their id and review across re-runs (:func:`sync_changes`). The files must be
    written already; :func:`eo_tasks.maps.annual_maps.store_year` is the full, versioned write.

    Returns:
        The number of change rows written.
    """
    with year_lock(conn, aoi, year), year_transaction(conn, aoi, year) as cur:
        upsert_map(cur, aoi, year, cog_path, model_id, areas, grid)
        sync_changes(cur, aoi, year, grid, changes)
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
