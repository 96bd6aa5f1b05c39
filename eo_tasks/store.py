"""Yearly land-cover maps and change polygons: Cloud Optimized GeoTIFFs and PostGIS rows.

A map year is replaced as a whole: its COG is written under a temporary name and renamed, and
its ``lc_map`` row and ``lc_change`` rows are deleted and inserted in one transaction, so a
failed run leaves the previous year untouched and a re-run never duplicates rows. Reviews
survive re-runs: a change region that comes back with the same classes keeps its status.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from eo_tasks.aoi import GridSpec
from eo_tasks.classes import CLASSES, NODATA_CLASS

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection


def _srs_wkt(epsg: int) -> str:
    from osgeo import osr

    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    return str(srs.ExportToWkt())


def _mem_raster(array: np.ndarray, grid: GridSpec, gdal_type: int) -> Any:
    from osgeo import gdal

    rows, cols = array.shape
    mem = gdal.GetDriverByName("MEM").Create("", cols, rows, 1, gdal_type)
    mem.SetGeoTransform(grid.geotransform)
    mem.SetProjection(_srs_wkt(grid.epsg))
    mem.GetRasterBand(1).WriteArray(array)
    return mem


def write_class_cog(path: Path, classes: np.ndarray, grid: GridSpec) -> Path:
    """Writes a class map as a COG with the platform's colour table and mode overviews, atomically."""
    from osgeo import gdal

    gdal.UseExceptions()
    mem = _mem_raster(classes.astype(np.uint8), grid, gdal.GDT_Byte)
    band = mem.GetRasterBand(1)
    table = gdal.ColorTable()
    for cls in CLASSES:
        rgb = tuple(int(cls.color[i : i + 2], 16) for i in (1, 3, 5))
        table.SetColorEntry(cls.code, (*rgb, 255))
    table.SetColorEntry(NODATA_CLASS, (0, 0, 0, 0))
    band.SetRasterColorTable(table)
    band.SetNoDataValue(NODATA_CLASS)
    band.SetDescription("land cover class")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        gdal.GetDriverByName("COG").CreateCopy(
            str(tmp), mem, options=["COMPRESS=DEFLATE", "OVERVIEW_RESAMPLING=MODE", "BLOCKSIZE=256"]
        )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


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


def change_regions(
    kept: np.ndarray,
    from_class: np.ndarray,
    to_class: np.ndarray,
    dates: np.ndarray,
    grid: GridSpec,
) -> list[ChangeRegion]:
    """Polygonizes the kept change regions (8-connected) with GDAL and summarizes each.

    Args:
        kept: ``(rows, cols)`` permanent-change mask after the region-size filter.
        from_class: ``(rows, cols)`` class before.
        to_class: ``(rows, cols)`` class after.
        dates: ``(rows, cols)`` change dates as days since 1970-01-01.
        grid: The AOI grid.

    Returns:
        One region per connected component.
    """
    from osgeo import gdal, ogr
    from scipy import ndimage

    regions, n = ndimage.label(kept, structure=np.ones((3, 3), dtype=bool))
    if n == 0:
        return []
    raster = _mem_raster(regions.astype(np.int32), grid, gdal.GDT_Int32)
    source = ogr.GetDriverByName("Memory").CreateDataSource("")  # keep: the layer dies with its source
    layer = source.CreateLayer("regions", raster.GetSpatialRef())
    layer.CreateField(ogr.FieldDefn("region", ogr.OFTInteger))
    band = raster.GetRasterBand(1)
    gdal.Polygonize(band, band, layer, 0, ["8CONNECTED=8"])
    geometries: dict[int, Any] = {}
    for feature in layer:
        region = feature.GetField("region")
        geom = feature.GetGeometryRef().Clone()
        geometries[region] = geometries[region].Union(geom) if region in geometries else geom
    out = []
    for region, geom in sorted(geometries.items()):
        where = regions == region
        multi = ogr.ForceToMultiPolygon(geom)
        out.append(
            ChangeRegion(
                wkt=multi.ExportToWkt(),
                from_class=int(np.bincount(from_class[where]).argmax()),
                to_class=int(np.bincount(to_class[where]).argmax()),
                change_date=dt.date(1970, 1, 1) + dt.timedelta(days=int(np.median(dates[where]))),
                area_m2=float(where.sum() * grid.resolution**2),
            )
        )
    return out


def class_areas(classes: np.ndarray, resolution: float) -> dict[str, float]:
    """Area per class name, in hectares."""
    counts = np.bincount(classes.ravel(), minlength=max(c.code for c in CLASSES) + 1)
    return {c.name: float(counts[c.code] * resolution**2 / 1e4) for c in CLASSES}


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
                (aoi, year, change.wkt, grid.epsg, change.from_class, change.to_class, change.change_date,
                 change.area_m2),
            )  # fmt: skip
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
