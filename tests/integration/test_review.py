"""Reviews in the real PostGIS: who and when is recorded, and the maps follow the decision."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from eo_tasks.core.classes import CLASS_BY_NAME
from eo_tasks.core.errors import CatalogError, ConfigError
from eo_tasks.core.grid import GridSpec
from eo_tasks.maps.outputs import MapPaths, change_regions, class_areas, write_class_cog
from eo_tasks.maps.review import Review, apply_review, read_class_map
from eo_tasks.store.maps import replace_year

GRID = GridSpec(epsg=32632, bounds=(600000.0, 5099360.0, 600640.0, 5100000.0), resolution=10.0)  # 64 x 64
TREE, BARE, GRASS = (CLASS_BY_NAME[n].code for n in ("tree_cover", "bare", "grassland"))


def _store(conn: Any, data: Path) -> dict[int, Path]:
    """Maps of 2021 (forest) and 2022 (a clearing, dated late 2021, found in 2022's run)."""
    first = np.full(GRID.shape, TREE, dtype=np.uint8)
    second = first.copy()
    second[10:20, 10:25] = BARE
    changed = second != first
    days = np.where(changed, (dt.date(2021, 11, 20) - dt.date(1970, 1, 1)).days, 0)
    paths = {}
    for year, classes in ((2021, first), (2022, second)):
        path = write_class_cog(MapPaths.for_year(data, "alps", year).classes, classes, GRID)
        regions = change_regions(changed, first, second, days, GRID) if year == 2022 else []
        replace_year(conn, "alps", year, str(path), None, class_areas(classes, 10.0), GRID, regions)
        paths[year] = path
    return paths


def _change(conn: Any) -> tuple[Any, ...]:
    with conn, conn.cursor() as cur:
        cur.execute("SELECT id, status, new_class, reviewed_by, reviewed_at FROM lc_change")
        rows = cur.fetchall()
    assert len(rows) == 1
    return tuple(rows[0])


def _bare_pixels(path: Path) -> int:
    return int((read_class_map(str(path))[0] == BARE).sum())


def test_approval_carries_an_earlier_dated_change_back(conn: Any, tmp_path: Path) -> None:
    maps = _store(conn, tmp_path)
    change_id = _change(conn)[0]
    assert _bare_pixels(maps[2021]) == 0
    outcome = apply_review(conn, Review(change_id, "approve", "ana"))
    assert outcome.status == "approved" and outcome.maps_updated == (2021,) and outcome.pixels_updated == 150
    _, status, new_class, reviewer, when = _change(conn)
    assert (status, new_class, reviewer) == ("approved", None, "ana")
    assert abs((dt.datetime.now(dt.UTC) - when).total_seconds()) < 60
    assert _bare_pixels(maps[2021]) == _bare_pixels(maps[2022]) == 150
    with conn.cursor() as cur:
        cur.execute("SELECT class_areas_ha->>'bare' FROM lc_map WHERE year = 2021")
        assert float(cur.fetchone()[0]) == pytest.approx(1.5)  # 150 px of 100 m2
    assert MapPaths.for_year(tmp_path, "alps", 2021).classes_png.is_file()


def test_relabel_then_reject(conn: Any, tmp_path: Path) -> None:
    maps = _store(conn, tmp_path)
    change_id = _change(conn)[0]
    apply_review(conn, Review(change_id, "relabel", "ben", new_class=GRASS))
    for year in (2021, 2022):
        assert int((read_class_map(str(maps[year]))[0] == GRASS).sum()) == 150
    assert _change(conn)[1:4] == ("approved", GRASS, "ben")
    outcome = apply_review(conn, Review(change_id, "reject", "cleo"))  # a second opinion: not a change
    assert outcome.maps_updated == (2021, 2022)
    for year in (2021, 2022):
        assert (read_class_map(str(maps[year]))[0] == TREE).all()
    assert _change(conn)[1:4] == ("rejected", None, "cleo")


def test_a_rejection_only_touches_the_changed_class(conn: Any, tmp_path: Path) -> None:
    maps = _store(conn, tmp_path)
    classes, _ = read_class_map(str(maps[2022]))
    classes[10:12, 10:25] = GRASS  # edited since (say, a later change): must survive the rejection
    write_class_cog(maps[2022], classes, GRID)
    outcome = apply_review(conn, Review(_change(conn)[0], "reject", "dan"))
    assert outcome.pixels_updated == 120
    after = read_class_map(str(maps[2022]))[0]
    assert (after[10:12, 10:25] == GRASS).all() and (after[12:20, 10:25] == TREE).all()


def test_bad_reviews_are_refused(conn: Any, tmp_path: Path) -> None:
    _store(conn, tmp_path)
    with pytest.raises(CatalogError, match="no change with id 999999"):
        apply_review(conn, Review(999999, "approve", "ana"))
    with pytest.raises(ConfigError, match="relabel needs new_class"):
        Review(1, "relabel", "ana")
    with pytest.raises(ConfigError, match="reviewer"):
        Review(1, "approve", " ")
    with pytest.raises(ConfigError, match="not a platform class"):
        Review(1, "relabel", "ana", new_class=42)
