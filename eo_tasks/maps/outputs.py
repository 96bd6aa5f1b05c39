"""Yearly land-cover maps and change polygons: Cloud Optimized GeoTIFFs and PostGIS rows.

A map year is replaced as a whole: its COG is written under a temporary name and renamed, and
its ``lc_map`` row and ``lc_change`` rows are deleted and inserted in one transaction, so a
failed run leaves the previous year untouched and a re-run never duplicates rows. Reviews
survive re-runs: a change region that comes back with the same classes keeps its status.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from eo_tasks.core.classes import CLASSES, NODATA_CLASS, category_names
from eo_tasks.core.files import atomic_path
from eo_tasks.core.grid import GridSpec
from eo_tasks.core.raster import srs_wkt
from eo_tasks.store.maps import ChangeRegion

if TYPE_CHECKING:
    pass


CURRENT_FILE = "CURRENT"  # in a year's folder: the name of its current version (written after the commit)


@dataclass(frozen=True)
class MapPaths:
    """Where one AOI-year's outputs live: ``<data>/maps/<aoi>/<year>/<version>/``.

    Each run writes a new version folder; the database transaction switches ``lc_map`` to it, the
    year's STAC item (in the year's folder) and ``CURRENT`` then name it, and older versions are
    removed. ``version`` empty is the unversioned layout (files directly in the year's folder).

    Attributes:
        root: The year's directory.
        aoi: AOI name.
        year: Map year.
        version: The version folder's name (``v…``), or empty.
    """

    root: Path
    aoi: str
    year: int
    version: str = ""

    @classmethod
    def for_year(cls, data_dir: Path, aoi: str, year: int, version: str | None = None) -> MapPaths:
        """The layout of ``aoi``'s outputs for ``year``.

        Args:
            data_dir: The platform's data root.
            aoi: AOI name.
            year: Map year.
            version: A version folder; None: the year's current one (the unversioned layout if
                the year has none).
        """
        root = data_dir / "maps" / aoi / str(year)
        if version is None:
            pointer = root / CURRENT_FILE
            version = pointer.read_text().strip() if pointer.is_file() else ""
        return cls(root, aoi, year, version)

    @classmethod
    def new_version(cls, data_dir: Path, aoi: str, year: int) -> MapPaths:
        """A fresh version folder's layout (time-ordered, unique)."""
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        return cls.for_year(data_dir, aoi, year, f"v{stamp}-{uuid.uuid4().hex[:6]}")

    @property
    def folder(self) -> Path:
        """The folder of this version's files."""
        return self.root / self.version if self.version else self.root

    @property
    def classes(self) -> Path:
        """The annual land-cover map (COG, colour table)."""
        return self.folder / f"lc_{self.aoi}_{self.year}.tif"

    @property
    def changes(self) -> Path:
        """The change raster (COG; bands: date as days since 1970-01-01, from-class, to-class)."""
        return self.folder / f"changes_{self.aoi}_{self.year}.tif"

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
        return self.folder / f"baseline_{self.aoi}_{self.year}.tif"

    @property
    def files(self) -> tuple[Path, ...]:
        """Every file of this version (the STAC item aside)."""
        return (self.classes, self.changes, self.classes_png, self.changes_png, self.annual_baseline)

    @property
    def stac_item(self) -> Path:
        """The year's STAC item (in the year's folder; its assets point into the current version)."""
        return self.root / f"{self.aoi}_{self.year}.json"

    @property
    def current_file(self) -> Path:
        """The pointer naming the year's current version."""
        return self.root / CURRENT_FILE

    @property
    def labels(self) -> Path:
        """Per-block label sequences written by the inference job array."""
        return self.root / "labels"


def map_quicklook_path(cog: Path) -> Path:
    """The PNG quicklook next to a map or change COG."""
    return cog.with_suffix(".png")


def _mem_raster(array: np.ndarray, grid: GridSpec, gdal_type: int, bands: int = 1) -> Any:
    """An in-memory GDAL raster on the grid; ``array`` is written to band 1."""
    from osgeo import gdal

    rows, cols = array.shape
    mem = gdal.GetDriverByName("MEM").Create("", cols, rows, bands, gdal_type)
    mem.SetGeoTransform(grid.geotransform)
    mem.SetProjection(srs_wkt(grid.epsg))
    mem.GetRasterBand(1).WriteArray(array)
    return mem


def _write_cog(path: Path, mem: Any) -> Path:
    """Copies an in-memory raster to a COG (mode overviews), under a temporary name, then renamed.

    GDAL keeps category names and attribute tables in a ``.aux.xml`` sidecar; it is renamed into
    place first, so the map never shows up without its class names.
    """
    from osgeo import gdal

    with atomic_path(path) as tmp:
        gdal.GetDriverByName("COG").CreateCopy(
            str(tmp), mem, options=["COMPRESS=DEFLATE", "OVERVIEW_RESAMPLING=MODE", "BLOCKSIZE=256"]
        )
        sidecar = Path(f"{tmp}.aux.xml")
        if sidecar.exists():
            os.replace(sidecar, f"{path}.aux.xml")
        else:
            Path(f"{path}.aux.xml").unlink(missing_ok=True)
    return path


def _class_table() -> Any:
    """A raster attribute table: value, class name, title and RGBA of every class (QGIS, ArcGIS)."""
    from osgeo import gdal

    rat = gdal.RasterAttributeTable()
    rat.SetTableType(gdal.GRTT_THEMATIC)
    columns = [
        ("value", gdal.GFT_Integer, gdal.GFU_MinMax),
        ("class", gdal.GFT_String, gdal.GFU_Name),
        ("title", gdal.GFT_String, gdal.GFU_Generic),
        ("red", gdal.GFT_Integer, gdal.GFU_Red),
        ("green", gdal.GFT_Integer, gdal.GFU_Green),
        ("blue", gdal.GFT_Integer, gdal.GFU_Blue),
    ]
    for name, kind, usage in columns:
        rat.CreateColumn(name, kind, usage)
    rat.SetRowCount(len(CLASSES))
    for row, cls in enumerate(CLASSES):
        rat.SetValueAsInt(row, 0, cls.code)
        rat.SetValueAsString(row, 1, cls.name)
        rat.SetValueAsString(row, 2, cls.title)
        for column, value in enumerate(cls.rgb, start=3):
            rat.SetValueAsInt(row, column, value)
    return rat


def write_class_cog(path: Path, classes: np.ndarray, grid: GridSpec) -> Path:
    """Writes a class map as a COG, atomically, with everything a GIS needs to name the classes.

    The band carries the platform's colour table (values that are no class transparent), GDAL
    category names and a raster attribute table (in the ``.aux.xml`` sidecar), and a QGIS style
    (``.qml``) is written next to it.
    """
    from osgeo import gdal

    from eo_tasks.core.quicklook import class_color_table
    from eo_tasks.maps.styles import write_class_style

    gdal.UseExceptions()
    mem = _mem_raster(classes.astype(np.uint8), grid, gdal.GDT_Byte)
    band = mem.GetRasterBand(1)
    band.SetRasterColorTable(class_color_table())
    band.SetCategoryNames(category_names())
    band.SetDefaultRAT(_class_table())
    band.SetNoDataValue(NODATA_CLASS)
    band.SetDescription("land cover class")
    _write_cog(path, mem)
    write_class_style(path)
    return path


def write_change_cog(
    path: Path, days: np.ndarray, from_class: np.ndarray, to_class: np.ndarray, grid: GridSpec
) -> Path:
    """Writes the change raster: bands change date (days since 1970-01-01), from-class, to-class.

    0 everywhere a pixel did not change (the no-data value). The class bands carry the class
    names as GDAL categories; a QGIS style (the class after the change) is written next to it.
    """
    from osgeo import gdal

    from eo_tasks.maps.styles import write_change_style

    gdal.UseExceptions()
    changed = days > 0
    mem = _mem_raster(np.where(changed, days, 0).astype(np.int32), grid, gdal.GDT_Int32, bands=3)
    bands = {"change date (days since 1970-01-01)": days, "class before": from_class, "class after": to_class}
    for i, (name, array) in enumerate(bands.items(), 1):
        band = mem.GetRasterBand(i)
        band.WriteArray(np.where(changed, array, 0).astype(np.int32))
        band.SetNoDataValue(0)
        band.SetDescription(name)
        if i == 1:
            band.SetUnitType("days since 1970-01-01")
        else:
            band.SetCategoryNames(category_names())
    _write_cog(path, mem)
    write_change_style(path)
    return path


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
