"""The PostGIS store as GIS users query it: valid polygons, class names, spatial indexes, comments."""

from __future__ import annotations

import datetime as dt
from typing import Any

from eo_tasks.core.classes import CLASSES
from eo_tasks.core.grid import GridSpec
from eo_tasks.store.maps import ChangeRegion, replace_year

GRID = GridSpec(epsg=32632, bounds=(600000.0, 5099360.0, 600640.0, 5100000.0), resolution=10.0)
# Two 10 m pixels touching at one corner, as one ring: GDAL's polygonize returns such rings
# (8-connected regions); OGC calls it a ring self-intersection.
SELF_TOUCHING = (
    "MULTIPOLYGON(((600000 5100000,600010 5100000,600010 5099990,600020 5099990,600020 5099980,"
    "600010 5099980,600010 5099990,600000 5099990,600000 5100000)))"
)
BOW_TIE = "MULTIPOLYGON(((10.30 46.04,10.31 46.05,10.31 46.04,10.30 46.05,10.30 46.04)))"
TABLES = (
    "scene",
    "aoi_scene",
    "scene_skip",
    "datacube",
    "training_set",
    "model",
    "lc_map",
    "lc_change",
    "lc_class",
)


def _rows(conn: Any, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def _store_year(conn: Any) -> None:
    region = ChangeRegion(SELF_TOUCHING, 4, 1, dt.date(2022, 5, 1), 200.0)
    replace_year(
        conn, "alps", 2022, "/maps/lc.tif", None, {"tree_cover": 40.0, "artificial": 0.96}, GRID, [region]
    )


def test_invalid_change_polygons_are_stored_valid(conn: Any) -> None:
    assert _rows(conn, "SELECT ST_IsValid(ST_GeomFromText(%s, 32632))", (SELF_TOUCHING,)) == [(False,)]
    assert _rows(conn, "SELECT ST_IsValid(ST_GeomFromText(%s, 4326))", (BOW_TIE,)) == [(False,)]

    _store_year(conn)  # through the platform's writer
    with conn, conn.cursor() as cur:  # and by hand, as a GIS user would
        cur.execute(
            "INSERT INTO lc_change (aoi, year, geom, from_class, to_class, change_date, area_m2) "
            "VALUES ('alps', 2022, ST_GeomFromText(%s, 4326), 4, 8, '2022-06-01', 1.0)",
            (BOW_TIE,),
        )

    rows = _rows(
        conn,
        "SELECT ST_IsValid(geom), GeometryType(geom), ST_NumGeometries(geom), ST_Area(geom::geography) "
        "FROM lc_change ORDER BY id",
    )
    assert [r[:3] for r in rows] == [(True, "MULTIPOLYGON", 2), (True, "MULTIPOLYGON", 2)]
    assert abs(rows[0][3] - 200.0) < 1.0  # both pixels kept, nothing lost
    # an update that breaks a polygon is repaired too
    with conn, conn.cursor() as cur:
        cur.execute("UPDATE lc_change SET geom = ST_GeomFromText(%s, 4326)", (BOW_TIE,))
    assert _rows(conn, "SELECT bool_and(ST_IsValid(geom)) FROM lc_change") == [(True,)]


def test_every_stored_geometry_is_valid(conn: Any) -> None:
    _store_year(conn)
    columns = _rows(
        conn,
        "SELECT f_table_name, f_geometry_column FROM geometry_columns "
        "WHERE f_table_schema = current_schema()",
    )
    assert {c for c in columns if c[0] in TABLES} == {
        ("scene", "footprint"),
        ("lc_map", "footprint"),
        ("lc_change", "geom"),
    }
    invalid = 0
    for table, column in columns:
        invalid += _rows(conn, f'SELECT count(*) FROM "{table}" WHERE NOT ST_IsValid("{column}")')[0][0]
    assert invalid == 0
    assert _rows(conn, "SELECT count(*) FROM lc_change")[0][0] == 1


def test_lc_class_matches_the_platform_classes_and_views_name_them(conn: Any) -> None:
    assert _rows(conn, "SELECT code, name, title, colour FROM lc_class ORDER BY code") == [
        (c.code, c.name, c.title, c.color) for c in CLASSES
    ]
    _store_year(conn)
    assert _rows(
        conn,
        "SELECT from_class_name, to_class_title, final_class_name, final_class_colour FROM lc_change_named",
    ) == [("tree_cover", "Artificial surfaces", "artificial", "#fa0000")]
    with conn, conn.cursor() as cur:
        cur.execute("UPDATE lc_change SET new_class = 8, status = 'approved'")
    assert _rows(conn, "SELECT final_class, final_class_name FROM lc_change_named") == [(8, "water")]
    assert _rows(conn, "SELECT class_name, class_title, area_ha FROM lc_map_named ORDER BY class_code") == [
        ("artificial", "Artificial surfaces", 0.96),
        ("tree_cover", "Tree cover", 40.0),
    ]


def test_geometry_columns_have_spatial_indexes_and_everything_has_comments(conn: Any) -> None:
    indexed = _rows(
        conn,
        """
        SELECT t.relname, a.attname FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_am am ON am.oid = i.relam
        JOIN pg_class t ON t.oid = x.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
        JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = x.indkey[0]
        WHERE am.amname = 'gist' AND n.nspname = current_schema()
        """,
    )
    geometry = _rows(
        conn,
        "SELECT g.f_table_name, g.f_geometry_column FROM geometry_columns g "
        "JOIN pg_class c ON c.relname = g.f_table_name AND c.relnamespace = current_schema()::regnamespace "
        "WHERE g.f_table_schema = current_schema() AND c.relkind = 'r'",
    )
    assert len(geometry) >= 3 and set(geometry) <= set(indexed)
    uncommented = _rows(
        conn,
        """
        SELECT c.relname, a.attname FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relname = ANY(%s)
          AND (col_description(c.oid, a.attnum) IS NULL OR obj_description(c.oid, 'pg_class') IS NULL)
        """,
        (list(TABLES),),
    )
    assert uncommented == []
