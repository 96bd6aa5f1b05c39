"""Reviewing detected changes: approve, reject or relabel, and keep the annual maps consistent.

Every change starts ``pending``. A reviewer's decision is recorded with their name and the time,
and the maps follow it, as in Sedona et al. (2023):

- **approve** a change dated in an earlier year than the map it was found in: the change is carried
  back into the maps from its date's year on (the map of year Y−1 gets it too);
- **relabel**: approve with another new class, which replaces the detected one in those maps;
- **reject**: the pixels return to the class before the change in the maps from the detection year on.

Only pixels inside the change polygon that still hold the class being replaced are rewritten, so a
later change over the same place is never overwritten. A review first takes the locks of its
maps' years, those the runs making a year hold, so it never interleaves with a re-run (and a re-run
keeps its decision: :func:`eo_tasks.maps.versions.apply_reviews`). The review, the ``lc_map``
class areas and row locks on the maps concerned (so concurrent reviews of one map queue) form one
transaction; each COG is replaced atomically inside it, just before the commit — if the commit
itself failed, the files would be ahead of the rows until the next review or re-run of that year
(a re-run draws the pixels from the recorded statuses).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from eo_tasks.core.classes import CLASS_BY_CODE
from eo_tasks.core.errors import CatalogError, ConfigError
from eo_tasks.core.grid import GridSpec
from eo_tasks.core.quicklook import class_quicklook
from eo_tasks.maps.outputs import class_areas, map_quicklook_path, write_class_cog
from eo_tasks.maps.stac import refresh_item_files
from eo_tasks.store import review as review_store
from eo_tasks.store.maps import year_lock

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

ACTIONS = ("approve", "reject", "relabel")
REVIEW_LOCK_WAIT_S = 60.0  # a review waits this long for a run re-making one of its maps


@dataclass(frozen=True)
class Review:
    """A reviewer's decision on one change.

    Attributes:
        change_id: ``lc_change.id``.
        action: ``approve``, ``reject`` or ``relabel``.
        reviewer: Who decided (recorded in ``reviewed_by``).
        new_class: The class to set instead of the detected one (``relabel`` only).
    """

    change_id: int
    action: str
    reviewer: str
    new_class: int | None = None

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ConfigError(f"review action must be one of {ACTIONS}, got {self.action!r}")
        if not self.reviewer.strip():
            raise ConfigError("a review needs the reviewer's name")
        if (self.action == "relabel") != (self.new_class is not None):
            raise ConfigError("relabel needs new_class, and only relabel takes one")
        if self.new_class is not None and self.new_class not in CLASS_BY_CODE:
            raise ConfigError(f"new_class {self.new_class} is not a platform class code")


@dataclass(frozen=True)
class ReviewOutcome:
    """What a review changed.

    Attributes:
        change_id: The change reviewed.
        status: Its new status.
        maps_updated: Years whose map pixels were rewritten.
        pixels_updated: Pixels rewritten over all those maps.
    """

    change_id: int
    status: str
    maps_updated: tuple[int, ...]
    pixels_updated: int


def read_class_map(path: str) -> tuple[np.ndarray, GridSpec]:
    """A class COG and its grid."""
    from osgeo import gdal, osr

    gdal.UseExceptions()
    ds = gdal.Open(path)
    x0, res, _, y1, _, _ = ds.GetGeoTransform()
    srs = osr.SpatialReference(wkt=ds.GetProjection())
    srs.AutoIdentifyEPSG()
    epsg = int(srs.GetAuthorityCode(None))
    grid = GridSpec(
        epsg=epsg, bounds=(x0, y1 - res * ds.RasterYSize, x0 + res * ds.RasterXSize, y1), resolution=res
    )
    return np.asarray(ds.GetRasterBand(1).ReadAsArray()), grid


def polygon_mask(wkt: str, grid: GridSpec) -> np.ndarray:
    """Pixels of ``grid`` whose centre lies inside the polygon (WKT in the grid's CRS)."""
    return polygon_numbers([wkt], grid) > 0


def polygon_numbers(wkts: Sequence[str], grid: GridSpec) -> np.ndarray:
    """Each pixel of ``grid`` numbered by the polygon its centre lies in, in one rasterization.

    Args:
        wkts: Polygons (WKT in the grid's CRS).
        grid: The grid.

    Returns:
        ``(rows, cols)`` int32: 1 + the polygon's index in ``wkts``, 0 outside all of them; where
        polygons overlap, the first one's.
    """
    from osgeo import gdal, ogr, osr

    rows, cols = grid.shape
    raster = gdal.GetDriverByName("MEM").Create("", cols, rows, 1, gdal.GDT_Int32)
    raster.SetGeoTransform(grid.geotransform)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(grid.epsg)
    raster.SetProjection(srs.ExportToWkt())
    source = ogr.GetDriverByName("Memory").CreateDataSource("")
    layer = source.CreateLayer("polygons", srs)
    layer.CreateField(ogr.FieldDefn("number", ogr.OFTInteger))
    for number in range(len(wkts), 0, -1):  # burnt in order, so the first one is burnt last
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetField("number", number)
        feature.SetGeometry(ogr.CreateGeometryFromWkt(wkts[number - 1]))
        layer.CreateFeature(feature)
    gdal.RasterizeLayer(raster, [1], layer, options=["ATTRIBUTE=number"])
    return np.asarray(raster.GetRasterBand(1).ReadAsArray(), dtype=np.int32)


def held_class(status: str, row: dict[str, Any], year: int) -> int:
    """The class a change's pixels hold in the map of ``year``, given the change's review status."""
    if status == "pending":
        first, after = row["year"], row["to_class"]
    elif status == "approved":
        first, after = min(row["change_date"].year, row["year"]), row["new_class"] or row["to_class"]
    else:
        return int(row["from_class"])
    return int(after if year >= first else row["from_class"])


def apply_review(
    conn: PgConnection, review: Review, lock_wait_s: float = REVIEW_LOCK_WAIT_S
) -> ReviewOutcome:
    """Records a review and rewrites the maps it concerns, in one transaction.

    The maps' years are locked first (the locks the runs that make those years hold), so a review
    never interleaves with a run re-making one of its maps: it waits for the run, then rewrites
    the version the run switched to.

    Args:
        conn: The PostGIS store (psycopg2).
        review: The decision.
        lock_wait_s: How long to wait for a run making one of the maps.

    Returns:
        What changed.

    Raises:
        CatalogError: No change with that id.
        ConcurrentRunError: A run kept one of the maps locked for longer than ``lock_wait_s``.
    """
    found = review_store.change_map_years(conn, review.change_id)
    if found is None:
        raise CatalogError(f"no change with id {review.change_id}")
    with ExitStack() as locks:
        for year in found[1]:
            locks.enter_context(year_lock(conn, found[0], year, lock_wait_s))
        return _apply(conn, review)


def _apply(conn: PgConnection, review: Review) -> ReviewOutcome:
    status = "rejected" if review.action == "reject" else "approved"
    updated: list[int] = []
    rewritten: dict[int, str] = {}
    pixels = 0
    with conn, conn.cursor() as cur:
        before = review_store.lock_change(cur, review.change_id)
        if before is None:
            raise CatalogError(f"no change with id {review.change_id}")
        after = {**before, "new_class": review.new_class if review.action == "relabel" else None}
        first = min(before["change_date"].year, before["year"])
        for year, cog_path in review_store.lock_maps_from(cur, before["aoi"], first):
            old, new = held_class(before["status"], before, year), held_class(status, after, year)
            if old == new:
                continue
            classes, grid = read_class_map(cog_path)
            wkt = review_store.change_wkt(cur, review.change_id, grid.epsg)
            where = polygon_mask(wkt, grid) & (classes == old)
            if not where.any():
                continue
            classes[where] = new
            write_class_cog(Path(cog_path), classes, grid)
            class_quicklook(classes, map_quicklook_path(Path(cog_path)))
            review_store.set_class_areas(cur, before["aoi"], year, class_areas(classes, grid.resolution))
            updated.append(year)
            rewritten[year] = cog_path
            pixels += int(where.sum())
        review_store.record_review(cur, review.change_id, status, after["new_class"], review.reviewer)
    for year, cog_path in rewritten.items():  # the STAC items describe the rewritten COGs again
        item_name = f"{before['aoi']}_{year}.json"
        items = [folder / item_name for folder in Path(cog_path).parents[:2]]
        for item in (i for i in items if i.is_file()):
            refresh_item_files(item)
    return ReviewOutcome(review.change_id, status, tuple(updated), pixels)
