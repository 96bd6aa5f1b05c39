"""The fault suite: faults injected into real runs against the real PostGIS (private schemas).

Every test asserts the same things: no row lost or duplicated, the files equal the rows (the map
COG, the ``CURRENT`` pointer and the STAC item all name the version ``lc_map`` points at, and its
pixels show what the reviews say), and a clear message naming the cause.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from tests.faults import world


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/faults/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def pg(pg_schema: dict[str, Any]) -> dict[str, Any]:
    """psycopg2 connect() arguments of a private, migrated schema."""
    import psycopg2

    from eo_tasks.store.connection import migrate

    args = {k: v for k, v in pg_schema.items() if k != "schema"}
    with closing(psycopg2.connect(**args)) as conn:
        migrate(conn)
    return args


@pytest.fixture
def connect(pg: dict[str, Any]) -> Iterator[Callable[[], Any]]:
    """Opens connections to the private schema (closed after the test)."""
    import psycopg2

    opened: list[Any] = []

    def open_one() -> Any:
        opened.append(psycopg2.connect(**pg))
        return opened[-1]

    yield open_one
    for conn in opened:
        conn.close()


@pytest.fixture
def root(tmp_path: Path, connect: Callable[[], Any]) -> Path:
    """The world on disk, its cubes and model registered."""
    world.build(tmp_path)
    world.register(connect(), tmp_path)
    return tmp_path


def rows(conn: Any, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """The result of a query, in a transaction of its own."""
    with conn, conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def snapshot(conn: Any, root: Path) -> dict[str, Any]:
    """Everything a year's outputs consist of: rows, files (by digest), STAC documents, pointers."""
    maps = world.AOI
    top = root / "data" / "maps" / maps
    files = {
        str(p.relative_to(top)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(top.rglob("*"))
        if p.is_file() and "labels" not in p.parts
    }
    return {
        "lc_map": rows(conn, "SELECT year, cog_path, class_areas_ha, created_at FROM lc_map ORDER BY year"),
        "lc_change": rows(
            conn,
            "SELECT id, year, from_class, to_class, new_class, status, reviewed_by, ST_AsText(geom) "
            "FROM lc_change ORDER BY id",
        ),
        "files": files,
    }


def check_consistent(conn: Any, root: Path, year: int) -> None:
    """The year's files equal its rows: one version, named by lc_map, CURRENT and STAC; pixels = reviews."""
    from eo_tasks.maps.outputs import MapPaths, class_areas
    from eo_tasks.maps.review import held_class, polygon_mask, read_class_map

    [(cog_path, areas)] = rows(
        conn, "SELECT cog_path, class_areas_ha FROM lc_map WHERE aoi = %s AND year = %s", world.AOI, year
    )
    current = MapPaths.for_year(root / "data", world.AOI, year)
    assert Path(cog_path) == current.classes and current.classes.is_file()
    versions = sorted(p.name for p in current.root.iterdir() if p.is_dir() and p.name.startswith("v"))
    assert versions == [current.version], f"orphaned or missing versions: {versions}"
    assert all(f.is_file() for f in current.files)
    item = json.loads(current.stac_item.read_text())
    assert (current.stac_item.parent / item["assets"]["map"]["href"]).resolve() == current.classes.resolve()
    catalog = json.loads((current.root.parent / "catalog.json").read_text())
    assert f"./{year}/{current.stac_item.name}" in [link["href"] for link in catalog["links"]]
    classes, grid = read_class_map(cog_path)
    assert class_areas(classes, grid.resolution) == pytest.approx(areas)
    changes = rows(
        conn,
        "SELECT id, year, ST_AsText(ST_Transform(geom, %s)), from_class, to_class, new_class, status, "
        "change_date FROM lc_change WHERE aoi = %s AND year >= %s",
        grid.epsg,
        world.AOI,
        year,
    )
    names = ("id", "year", "wkt", "from_class", "to_class", "new_class", "status", "change_date")
    geoms = [c[2] for c in changes if c[1] == year]
    assert len(geoms) == len(set(geoms)), "duplicated change rows"
    for change in (dict(zip(names, c, strict=True)) for c in changes):
        inside = polygon_mask(change["wkt"], grid)
        expected = held_class(change["status"], change, year)
        assert (classes[inside] == expected).all(), f"pixels of change {change} disagree with its status"
