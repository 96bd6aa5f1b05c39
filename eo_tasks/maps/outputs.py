"""Yearly land-cover maps and change polygons: Cloud Optimized GeoTIFFs and PostGIS rows.

A map year is replaced as a whole: its COG is written under a temporary name and renamed, and
its ``lc_map`` row and ``lc_change`` rows are deleted and inserted in one transaction, so a
failed run leaves the previous year untouched and a re-run never duplicates rows. Reviews
survive re-runs: a change region that comes back with the same classes keeps its status.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from eo_tasks.core.classes import CLASSES, NODATA_CLASS
from eo_tasks.core.files import atomic_path
from eo_tasks.core.grid import GridSpec
from eo_tasks.core.raster import srs_wkt
from eo_tasks.store.maps import ChangeRegion

if TYPE_CHECKING:
    pass


@dataclass(frozen=True)
class MapPaths:
    """Where one AOI-year's outputs live: ``<data>/maps/<aoi>/<year>/`` (the AOI and year in every name).

    Attributes:
        root: The year's directory.
        aoi: AOI name.
        year: Map year.
    """

    root: Path
    aoi: str
    year: int

    @classmethod
    def for_year(cls, data_dir: Path, aoi: str, year: int) -> MapPaths:
        """The layout of ``aoi``'s outputs for ``year``."""
        return cls(data_dir / "maps" / aoi / str(year), aoi, year)

    @property
    def classes(self) -> Path:
        """The annual land-cover map (COG, colour table)."""
        return self.root / f"lc_{self.aoi}_{self.year}.tif"

    @property
    def changes(self) -> Path:
        """The change raster (COG; bands: date as days since 1970-01-01, from-class, to-class)."""
        return self.root / f"changes_{self.aoi}_{self.year}.tif"

    @property
    def classes_png(self) -> Path:
        """Quicklook of the map."""
        return map_quicklook_path(self.classes)

    @property
    def changes_png(self) -> Path:
        """Quicklook of the changes over a grey map."""
        return map_quicklook_path(self.changes)

    @property
    def annual_baseline(self) -> Path:
        """The per-year classifier's map without sequence analysis (a baseline for evaluation)."""
        return self.root / f"baseline_{self.aoi}_{self.year}.tif"

    @property
    def stac_item(self) -> Path:
        """The year's STAC item."""
        return self.root / f"{self.aoi}_{self.year}.json"

    @property
    def labels(self) -> Path:
        """Per-block label sequences written by the inference job array."""
        return self.root / "labels"


def map_quicklook_path(cog: Path) -> Path:
    """The PNG quicklook next to a map or change COG."""
    return cog.with_suffix(".png")


def _mem_raster(array: np.ndarray, grid: GridSpec, gdal_type: int) -> Any:
    from osgeo import gdal

    rows, cols = array.shape
    mem = gdal.GetDriverByName("MEM").Create("", cols, rows, 1, gdal_type)
    mem.SetGeoTransform(grid.geotransform)
    mem.SetProjection(srs_wkt(grid.epsg))
    mem.GetRasterBand(1).WriteArray(array)
    return mem


def _write_cog(path: Path, mem: Any) -> Path:
    """Copies an in-memory raster to a COG (mode overviews), under a temporary name, then renamed."""
    from osgeo import gdal

    with atomic_path(path) as tmp:
        gdal.GetDriverByName("COG").CreateCopy(
            str(tmp), mem, options=["COMPRESS=DEFLATE", "OVERVIEW_RESAMPLING=MODE", "BLOCKSIZE=256"]
        )
    return path


def write_class_cog(path: Path, classes: np.ndarray, grid: GridSpec) -> Path:
    """Writes a class map as a COG with the platform's colour table and mode overviews, atomically."""
    from osgeo import gdal

    from eo_tasks.core.quicklook import class_color_table

    gdal.UseExceptions()
    mem = _mem_raster(classes.astype(np.uint8), grid, gdal.GDT_Byte)
    band = mem.GetRasterBand(1)
    band.SetRasterColorTable(class_color_table())
    band.SetNoDataValue(NODATA_CLASS)
    band.SetDescription("land cover class")
    return _write_cog(path, mem)


def write_change_cog(
    path: Path, days: np.ndarray, from_class: np.ndarray, to_class: np.ndarray, grid: GridSpec
) -> Path:
    """Writes the change raster: bands change date (days since 1970-01-01), from-class, to-class.

    0 everywhere a pixel did not change (the no-data value).
    """
    from osgeo import gdal

    gdal.UseExceptions()
    changed = days > 0
    rows, cols = days.shape
    mem = gdal.GetDriverByName("MEM").Create("", cols, rows, 3, gdal.GDT_Int32)
    mem.SetGeoTransform(grid.geotransform)
    mem.SetProjection(srs_wkt(grid.epsg))
    bands = {"change date (days since 1970-01-01)": days, "class before": from_class, "class after": to_class}
    for i, (name, array) in enumerate(bands.items(), 1):
        band = mem.GetRasterBand(i)
        band.WriteArray(np.where(changed, array, 0).astype(np.int32))
        band.SetNoDataValue(0)
        band.SetDescription(name)
    return _write_cog(path, mem)


def change_regions(
    kept: np.ndarray,
    from_class: np.ndarray,
    to_class: np.ndarray,
    dates: np.ndarray,
    grid: GridSpec,
) -> list[ChangeRegion]:
    """Polygonizes the kept change regions (8-connected) with GDAL and summarizes each.

    One labelling and one polygonization of the AOI, then each region's statistics from its own
    bounding box (``ndimage.find_objects``): time and memory in O(area), not O(regions × area).
    Geometries are made valid (8-connected pixels touching at a corner) and kept as MultiPolygons.

    Args:
        kept: ``(rows, cols)`` permanent-change mask after the region-size filter.
        from_class: ``(rows, cols)`` class before.
        to_class: ``(rows, cols)`` class after.
        dates: ``(rows, cols)`` change dates as days since 1970-01-01.
        grid: The AOI grid.

    Returns:
        One region per connected component, in label order (row-major first pixel).
    """
    from scipy import ndimage

    regions, n = ndimage.label(kept, structure=np.ones((3, 3), dtype=bool))
    if n == 0:
        return []
    geometries = _region_polygons(regions.astype(np.int32, copy=False), grid)
    out = []
    for index, box in enumerate(ndimage.find_objects(regions), 1):
        if box is None:
            continue
        where = regions[box] == index
        out.append(
            ChangeRegion(
                wkt=geometries[index].ExportToWkt(),
                from_class=int(np.bincount(from_class[box][where]).argmax()),
                to_class=int(np.bincount(to_class[box][where]).argmax()),
                change_date=dt.date(1970, 1, 1) + dt.timedelta(days=int(np.median(dates[box][where]))),
                area_m2=float(where.sum() * grid.resolution**2),
            )
        )
    return out


def _region_polygons(regions: np.ndarray, grid: GridSpec) -> dict[int, Any]:
    """Region label → its valid MultiPolygon, from one GDAL polygonization of the label raster."""
    from osgeo import gdal, gdal_array, ogr

    gdal.UseExceptions()
    raster = gdal_array.OpenArray(regions)  # a view of the array: no copy
    raster.SetGeoTransform(grid.geotransform)
    raster.SetProjection(srs_wkt(grid.epsg))
    source = ogr.GetDriverByName("Memory").CreateDataSource("")  # keep: the layer dies with its source
    layer = source.CreateLayer("regions", raster.GetSpatialRef())
    layer.CreateField(ogr.FieldDefn("region", ogr.OFTInteger))
    band = raster.GetRasterBand(1)
    gdal.Polygonize(band, band, layer, 0, ["8CONNECTED=8"])
    parts: dict[int, Any] = {}
    for feature in layer:
        region = feature.GetField("region")
        multi = parts.setdefault(region, ogr.Geometry(ogr.wkbMultiPolygon))
        multi.AddGeometry(feature.GetGeometryRef())
    gdal.PushErrorHandler("CPLQuietErrorHandler")  # GEOS reports every invalid ring it repairs
    try:
        return {region: _valid_multipolygon(multi) for region, multi in parts.items()}
    finally:
        gdal.PopErrorHandler()


def _valid_multipolygon(geom: Any) -> Any:
    """The geometry as a valid MultiPolygon (pieces unioned; polygons of a MakeValid collection kept)."""
    from osgeo import ogr

    if geom.GetGeometryCount() > 1 or not geom.IsValid():
        geom = geom.UnionCascaded() if geom.GetGeometryCount() > 1 else geom
        geom = geom if geom.IsValid() else geom.MakeValid()
    if geom.GetGeometryType() == ogr.wkbGeometryCollection:
        polygons = ogr.Geometry(ogr.wkbMultiPolygon)
        for i in range(geom.GetGeometryCount()):
            part = geom.GetGeometryRef(i)
            if part.GetGeometryType() in (ogr.wkbPolygon, ogr.wkbMultiPolygon):
                for poly in ogr.ForceToMultiPolygon(part):
                    polygons.AddGeometry(poly)
        geom = polygons
    return ogr.ForceToMultiPolygon(geom)


def class_areas(classes: np.ndarray, resolution: float, pixels_at_a_time: int = 1 << 16) -> dict[str, float]:
    """Area per class name, in hectares (counted a slice of pixels at a time: no AOI-sized copy)."""
    counts = np.zeros(max(c.code for c in CLASSES) + 1, dtype=np.int64)
    flat = classes.reshape(-1)  # a view of a contiguous map
    for start in range(0, flat.size, pixels_at_a_time):
        counts += np.bincount(flat[start : start + pixels_at_a_time], minlength=counts.size)[: counts.size]
    return {c.name: float(counts[c.code] * resolution**2 / 1e4) for c in CLASSES}
