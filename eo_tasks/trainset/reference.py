"""The reference map on the AOI grid, and class rasters (GeoTIFF) written with the platform's colours.

Training labels come from a public product (ESA WorldCover, CORINE) in its own projection, pixel
size and codes. It is warped onto the AOI grid with nearest neighbour (codes are categories: any
other resampling would invent codes) and translated to platform classes with the AOI's legend, once,
before any sampling. Pixels the product does not cover become class 0 (no data).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from eo_tasks.core.classes import NODATA_CLASS, Legend
from eo_tasks.core.errors import ConfigError
from eo_tasks.core.files import atomic_path
from eo_tasks.core.grid import GridSpec
from eo_tasks.core.quicklook import class_color_table
from eo_tasks.core.raster import srs_wkt


def reference_on_grid(path: str | Path, legend_name: str, grid: GridSpec) -> np.ndarray:
    """Reads a reference map onto the AOI grid in platform class codes.

    Args:
        path: A single-band GDAL-readable raster in the product's codes (any CRS and pixel size).
        legend_name: A shipped legend (``worldcover``, ``corine``) or the path of a legend YAML.
        grid: The AOI grid.

    Returns:
        ``(rows, cols)`` uint8 platform class codes, 0 where the product has no data.

    Raises:
        ConfigError: The file cannot be read, or the legend misses a code found in it (the message
            names the file, the legend and the codes).
    """
    from osgeo import gdal

    gdal.UseExceptions()
    legend = Legend.load(legend_name)
    rows, cols = grid.shape
    try:
        source = gdal.Open(str(path))
        warped = gdal.Warp(
            "",
            source,
            format="MEM",
            outputBounds=grid.bounds,
            width=cols,
            height=rows,
            dstSRS=f"EPSG:{grid.epsg}",
            resampleAlg="near",
            dstAlpha=True,
        )
        codes = np.asarray(warped.GetRasterBand(1).ReadAsArray())
        covered = np.asarray(warped.GetRasterBand(2).ReadAsArray()) > 0
    except RuntimeError as err:
        raise ConfigError(f"reference map {path}: cannot be read onto the AOI grid: {err}") from err
    source_nodata = source.GetRasterBand(1).GetNoDataValue()
    if source_nodata is not None:
        covered &= codes != source_nodata
    if not covered.any():
        raise ConfigError(
            f"reference map {path}: does not cover the AOI grid {grid.bounds} (EPSG:{grid.epsg})"
        )
    try:
        classes = legend.to_platform(codes[covered])
    except ConfigError as err:
        raise ConfigError(f"reference map {path}: {err}") from err
    out = np.full((rows, cols), NODATA_CLASS, dtype=np.uint8)
    out[covered] = classes
    return out


@contextmanager
def class_raster_writer(path: Path, grid: GridSpec) -> Iterator[Callable[[int, int, np.ndarray], None]]:
    """Opens a tiled, compressed uint8 GeoTIFF on the AOI grid with the class colours (0 = no data).

    Yields a function ``write(row0, col0, classes)`` that stores a window; the file is written under a
    temporary name and renamed to ``path`` when the block exits without an error, so a failed run
    never leaves a partial map under the real name.

    Args:
        path: Destination ``.tif``.
        grid: The AOI grid.
    """
    from osgeo import gdal

    gdal.UseExceptions()
    rows, cols = grid.shape
    with atomic_path(path, suffix=".tif") as tmp:
        dataset = gdal.GetDriverByName("GTiff").Create(
            str(tmp), cols, rows, 1, gdal.GDT_Byte, options=["TILED=YES", "COMPRESS=DEFLATE"]
        )
        dataset.SetProjection(srs_wkt(grid.epsg))
        dataset.SetGeoTransform(grid.geotransform)
        band = dataset.GetRasterBand(1)
        band.SetNoDataValue(NODATA_CLASS)
        band.SetColorTable(class_color_table())
        band.SetColorInterpretation(gdal.GCI_PaletteIndex)

        def write(row0: int, col0: int, classes: np.ndarray) -> None:
            band.WriteArray(classes.astype(np.uint8), xoff=col0, yoff=row0)

        yield write
        dataset.FlushCache()
        band = dataset = None  # closes the file


def write_class_raster(path: Path, classes: np.ndarray, grid: GridSpec) -> Path:
    """Writes a whole class map as a GeoTIFF on the AOI grid (temporary name, then rename).

    Args:
        path: Destination ``.tif``.
        classes: ``(rows, cols)`` class codes (the grid's shape).
        grid: The AOI grid.

    Returns:
        ``path``.
    """
    with class_raster_writer(path, grid) as write:
        write(0, 0, classes)
    return path
