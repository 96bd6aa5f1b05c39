"""A small AOI with two annual maps and two detected changes, written the way the map DAG writes them.

Shared by the review UI's FastAPI tests (private schema) and its browser test (the real store the
api-server reads, under a unique AOI name, deleted afterwards).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np

from eo_tasks.core.classes import CLASS_BY_NAME
from eo_tasks.core.grid import GridSpec
from eo_tasks.core.quicklook import class_quicklook
from eo_tasks.maps.outputs import MapPaths, change_regions, class_areas, write_class_cog
from eo_tasks.store.maps import replace_year

GRID = GridSpec(
    epsg=32632, bounds=(664000.0, 5099360.0, 664640.0, 5100000.0), resolution=10.0
)  # Trento, 64 px
TREE, BARE, WATER = (CLASS_BY_NAME[n].code for n in ("tree_cover", "bare", "water"))
EARLY = dt.date(2021, 10, 15)  # dated in 2021, detected in the 2022 map: approving it rewrites 2021
LATE = dt.date(2022, 6, 1)


def _days(date: dt.date) -> int:
    return (date - dt.date(1970, 1, 1)).days


def seed_aoi(conn: Any, aoi: str, data_dir: Path) -> dict[str, Any]:
    """Writes the 2021 and 2022 maps (COG + quicklook) and the 2022 changes of ``aoi``.

    Returns:
        ``early`` / ``late``: the change ids; ``cogs``: year → COG path.
    """
    kept = np.zeros(GRID.shape, dtype=bool)
    dates = np.zeros(GRID.shape, dtype=np.int64)
    kept[5:15, 5:15], dates[5:15, 5:15] = True, _days(EARLY)  # 100 px
    kept[40:45, 40:60], dates[40:45, 40:60] = True, _days(LATE)  # 100 px
    before = np.full(GRID.shape, TREE, dtype=np.uint8)
    before[50:64, 0:20] = WATER
    after = np.where(kept, BARE, before).astype(np.uint8)
    cogs = {}
    for year, classes in ((2021, before), (2022, after)):
        paths = MapPaths.for_year(data_dir, aoi, year)
        write_class_cog(paths.classes, classes, GRID)
        class_quicklook(classes, paths.classes_png)
        regions = change_regions(kept, before, after, dates, GRID) if year == 2022 else []
        replace_year(
            conn, aoi, year, str(paths.classes), None, class_areas(classes, GRID.resolution), GRID, regions
        )
        cogs[year] = str(paths.classes)
    with conn, conn.cursor() as cur:
        cur.execute("SELECT change_date, id FROM lc_change WHERE aoi = %s", (aoi,))
        ids = dict(cur.fetchall())
    return {"early": ids[EARLY], "late": ids[LATE], "cogs": cogs}


def delete_aoi(conn: Any, aoi: str) -> None:
    """Removes the AOI's rows (changes first: they reference the maps)."""
    with conn, conn.cursor() as cur:
        cur.execute("DELETE FROM lc_change WHERE aoi = %s", (aoi,))
        cur.execute("DELETE FROM lc_map WHERE aoi = %s", (aoi,))
