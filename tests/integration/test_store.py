"""Yearly maps and change polygons in the real PostGIS: replaced per year, reviews kept, COGs valid."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import psycopg2
import pytest
from osgeo import gdal

from eo_tasks.core.classes import CLASS_BY_NAME
from eo_tasks.core.errors import CatalogError
from eo_tasks.core.grid import GridSpec
from eo_tasks.maps.outputs import change_regions, class_areas, write_class_cog
from eo_tasks.store.maps import replace_year

GRID = GridSpec(epsg=32632, bounds=(600000.0, 5099360.0, 600640.0, 5100000.0), resolution=10.0)  # 64 x 64
TREE, BARE = CLASS_BY_NAME["tree_cover"].code, CLASS_BY_NAME["bare"].code


def _changes() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    kept = np.zeros(GRID.shape, dtype=bool)
    kept[5:15, 5:15] = True  # 100 px
    kept[40:45, 40:60] = True  # 100 px
    before = np.full(GRID.shape, TREE, dtype=np.uint8)
    after = np.where(kept, BARE, TREE).astype(np.uint8)
    dates = np.full(GRID.shape, (dt.date(2022, 11, 3) - dt.date(1970, 1, 1)).days)
    return kept, before, after, dates


def test_cog_has_colours_overviews_and_georeferencing(tmp_path: Path) -> None:
    classes = np.random.default_rng(0).integers(1, 10, size=(600, 600)).astype(np.uint8)
    grid = GridSpec(epsg=32632, bounds=(600000.0, 5094000.0, 606000.0, 5100000.0), resolution=10.0)
    path = write_class_cog(tmp_path / "map.tif", classes, grid)
    ds = gdal.Open(str(path))
    assert ds.GetMetadata("IMAGE_STRUCTURE").get("LAYOUT") == "COG"
    band = ds.GetRasterBand(1)
    assert band.GetOverviewCount() >= 1
    assert band.GetRasterColorTable().GetColorEntry(TREE)[:3] == (0, 100, 0)
    assert ds.GetGeoTransform() == grid.geotransform
    np.testing.assert_array_equal(band.ReadAsArray(), classes)


def test_change_regions_are_polygonized_with_their_attributes() -> None:
    kept, before, after, dates = _changes()
    regions = change_regions(kept, before, after, dates, GRID)
    assert len(regions) == 2
    assert sorted(r.area_m2 for r in regions) == [10000.0, 10000.0]
    assert {(r.from_class, r.to_class, r.change_date) for r in regions} == {
        (TREE, BARE, dt.date(2022, 11, 3))
    }
    assert all(r.wkt.startswith("MULTIPOLYGON") for r in regions)


def test_a_rerun_replaces_the_year_and_keeps_reviews(conn: Any) -> None:
    kept, before, after, dates = _changes()
    regions = change_regions(kept, before, after, dates, GRID)
    areas = class_areas(after, GRID.resolution)
    assert replace_year(conn, "alps", 2022, "/maps/2022.tif", None, areas, GRID, regions) == 2
    with conn, conn.cursor() as cur:
        cur.execute(
            "UPDATE lc_change SET status = 'approved', reviewed_by = 'ana', reviewed_at = now() "
            "WHERE id = (SELECT min(id) FROM lc_change)"
        )
    replace_year(conn, "alps", 2022, "/maps/2022b.tif", None, areas, GRID, regions)  # a re-run
    replace_year(conn, "alps", 2021, "/maps/2021.tif", None, areas, GRID, [])
    with conn.cursor() as cur:
        cur.execute("SELECT year, cog_path FROM lc_map ORDER BY year")
        assert cur.fetchall() == [(2021, "/maps/2021.tif"), (2022, "/maps/2022b.tif")]
        cur.execute(
            "SELECT status, reviewed_by, round(ST_Area(geom::geography)) FROM lc_change ORDER BY status"
        )
        rows = cur.fetchall()
    assert [r[:2] for r in rows] == [("approved", "ana"), ("pending", None)]
    assert all(abs(float(r[2]) - 10000) < 100 for r in rows)  # 10 000 m2 each, measured on the ellipsoid


def test_a_failed_write_leaves_the_previous_year_untouched(conn: Any) -> None:
    kept, before, after, dates = _changes()
    regions = change_regions(kept, before, after, dates, GRID)
    replace_year(conn, "alps", 2022, "/maps/2022.tif", None, {}, GRID, regions)
    bad = [*regions[:1], regions[1].__class__("NOT WKT", TREE, BARE, dt.date(2022, 1, 1), 1.0)]
    with pytest.raises(
        CatalogError, match="PostGIS refused the rows of the map of alps 2022; nothing was switched"
    ):
        replace_year(conn, "alps", 2022, "/maps/broken.tif", None, {}, GRID, bad)
    with conn.cursor() as cur:
        cur.execute("SELECT cog_path FROM lc_map")
        assert cur.fetchall() == [("/maps/2022.tif",)]
        cur.execute("SELECT count(*) FROM lc_change")
        assert cur.fetchone() == (2,)


def _ids(conn: Any) -> dict[int, tuple[str, Any]]:
    with conn, conn.cursor() as cur:
        cur.execute("SELECT id, status, reviewed_by FROM lc_change ORDER BY id")
        return {row[0]: (row[1], row[2]) for row in cur.fetchall()}


def test_changes_keep_their_ids_and_a_reviewed_change_is_never_dropped(conn: Any) -> None:
    kept, before, after, dates = _changes()
    first, second = change_regions(kept, before, after, dates, GRID)
    replace_year(conn, "alps", 2022, "/maps/a.tif", None, {}, GRID, [first, second])
    ids = sorted(_ids(conn))
    with conn, conn.cursor() as cur:
        cur.execute("UPDATE lc_change SET status = 'approved', reviewed_by = 'ana' WHERE id = %s", (ids[0],))
    replace_year(conn, "alps", 2022, "/maps/b.tif", None, {}, GRID, [second, first])  # same changes: same ids
    assert _ids(conn) == {ids[0]: ("approved", "ana"), ids[1]: ("pending", None)}
    replace_year(conn, "alps", 2022, "/maps/c.tif", None, {}, GRID, [])  # neither detected any more
    assert _ids(conn) == {ids[0]: ("approved", "ana")}  # the pending one goes, the reviewed one stays


def test_the_store_refuses_a_duplicate_change_row(conn: Any) -> None:
    kept, before, after, dates = _changes()
    regions = change_regions(kept, before, after, dates, GRID)
    replace_year(conn, "alps", 2022, "/maps/a.tif", None, {}, GRID, regions)
    with pytest.raises(psycopg2.errors.UniqueViolation), conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO lc_change (aoi, year, geom, from_class, to_class, change_date, area_m2) "
            "SELECT aoi, year, geom, from_class, to_class, change_date, area_m2 FROM lc_change LIMIT 1"
        )


def test_a_change_rejected_last_year_and_found_again_stays_rejected(conn: Any) -> None:
    kept, before, after, dates = _changes()
    regions = change_regions(kept, before, after, dates, GRID)  # dated 2022-11-03
    replace_year(conn, "alps", 2022, "/maps/2022.tif", None, {}, GRID, regions)
    with conn, conn.cursor() as cur:
        cur.execute("UPDATE lc_change SET status = 'rejected', reviewed_by = 'ana', reviewed_at = now()")
    # The rejection put the old class back in 2022's map, so 2023's analysis finds the same change
    # again: the reviewer's decision holds. A change there dated in 2023 is a new one, to review.
    later = [replace(regions[0], change_date=dt.date(2023, 5, 1)), regions[1]]
    replace_year(conn, "alps", 2023, "/maps/2023.tif", None, {}, GRID, later)
    with conn, conn.cursor() as cur:
        cur.execute("SELECT change_date, status, reviewed_by FROM lc_change WHERE year = 2023 ORDER BY 1")
        assert cur.fetchall() == [
            (dt.date(2022, 11, 3), "rejected", "ana"),
            (dt.date(2023, 5, 1), "pending", None),
        ]
