"""PNG quicklooks of class maps, for reports, the review UI and a glance at a run's result.

A paletted PNG (one byte per pixel, the platform's class colours in the palette, no data
transparent) is small, opens in any browser and keeps the exact class of every pixel. Written
with GDAL's PNG driver, so no plotting library is needed; large maps are decimated (nearest
neighbour, never blending classes) to at most ``max_px`` on their longer side.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from eo_tasks.core.classes import CLASSES, NODATA_CLASS
from eo_tasks.core.files import atomic_path

DEFAULT_MAX_PX = 1024


UNUSED_ENTRY = (255, 255, 255, 0)  # palette entries that are no class: transparent, never black


def class_color_table() -> Any:
    """A full 256-entry GDAL colour table of the platform classes.

    Class 0 (no data) and every value that is no class are transparent, so a stray value never
    shows as a black pixel in QGIS or a browser.
    """
    from osgeo import gdal

    table = gdal.ColorTable()
    for value in range(256):
        table.SetColorEntry(value, UNUSED_ENTRY)
    table.SetColorEntry(NODATA_CLASS, (0, 0, 0, 0))
    for cls in CLASSES:
        table.SetColorEntry(cls.code, (*cls.rgb, 255))
    return table


FADED = 100  # quicklook palette entries FADED + code: a class colour faded towards white


def class_quicklook(
    classes: np.ndarray, path: Path, max_px: int = DEFAULT_MAX_PX, faded: np.ndarray | None = None
) -> Path:
    """Writes a class map as a paletted PNG (temporary name, then rename).

    Args:
        classes: ``(rows, cols)`` platform class codes (0 = no data, transparent).
        path: Destination ``.png``.
        max_px: Longest side of the PNG; larger maps are decimated by nearest neighbour.
        faded: Optional ``(rows, cols)`` mask of pixels drawn in a pale version of their colour.

    Returns:
        ``path``.
    """
    from osgeo import gdal

    gdal.UseExceptions()
    step = max(1, -(-max(classes.shape) // max_px))
    image = classes.astype(np.uint8)
    if faded is not None:
        image = np.where(faded & (image != NODATA_CLASS), image + FADED, image).astype(np.uint8)
    image = np.ascontiguousarray(image[::step, ::step])
    memory = gdal.GetDriverByName("MEM").Create("", image.shape[1], image.shape[0], 1, gdal.GDT_Byte)
    band = memory.GetRasterBand(1)
    band.WriteArray(image)
    table = class_color_table()
    for cls in CLASSES:
        table.SetColorEntry(FADED + cls.code, (*(255 - (255 - v) // 4 for v in cls.rgb), 255))
    band.SetColorTable(table)
    band.SetColorInterpretation(gdal.GCI_PaletteIndex)
    band.SetNoDataValue(NODATA_CLASS)
    with atomic_path(path, suffix=".png") as tmp:
        gdal.GetDriverByName("PNG").CreateCopy(str(tmp), memory, strict=0, options=["ZLEVEL=9"])
        Path(f"{tmp}.aux.xml").unlink(missing_ok=True)
    return path


def change_quicklook(
    classes: np.ndarray, changed: np.ndarray, path: Path, max_px: int = DEFAULT_MAX_PX
) -> Path:
    """The changes in their new class's colour over a faded map (``changed``: the kept changes)."""
    return class_quicklook(classes, path, max_px=max_px, faded=~changed)


def raster_quicklook(raster: Path, path: Path, max_px: int = DEFAULT_MAX_PX) -> Path:
    """Writes the quicklook of a class GeoTIFF, reading it already decimated (memory: the PNG's size).

    Args:
        raster: A single-band class raster (e.g. a preliminary map).
        path: Destination ``.png``.
        max_px: Longest side of the PNG.

    Returns:
        ``path``.
    """
    from osgeo import gdal

    gdal.UseExceptions()
    dataset = gdal.Open(str(raster))
    cols, rows = dataset.RasterXSize, dataset.RasterYSize
    step = max(1, -(-max(rows, cols) // max_px))
    classes = dataset.GetRasterBand(1).ReadAsArray(
        buf_xsize=-(-cols // step), buf_ysize=-(-rows // step), resample_alg=gdal.GRIORA_NearestNeighbour
    )
    return class_quicklook(np.asarray(classes), path, max_px=max_px)


def write_rgb_png(image: np.ndarray, path: Path) -> Path:
    """Writes an ``(rows, cols, 3)`` uint8 image as an RGB PNG (temporary name, then rename)."""
    from osgeo import gdal

    gdal.UseExceptions()
    rows, cols, _ = image.shape
    memory = gdal.GetDriverByName("MEM").Create("", cols, rows, 3, gdal.GDT_Byte)
    for band in range(3):
        memory.GetRasterBand(band + 1).WriteArray(np.ascontiguousarray(image[:, :, band]))
    with atomic_path(path, suffix=".png") as tmp:
        gdal.GetDriverByName("PNG").CreateCopy(str(tmp), memory, strict=0, options=["ZLEVEL=9"])
        Path(f"{tmp}.aux.xml").unlink(missing_ok=True)
    return path
