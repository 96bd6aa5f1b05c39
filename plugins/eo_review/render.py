"""Draws an annual map COG as a PNG that a web map can lay over its basemap without distortion.

The maps live on UTM grids; Leaflet draws in Web Mercator (EPSG:3857) and places an image by its
south-west and north-east corners. Warping the COG onto an EPSG:3857 extent (nearest neighbour,
so class codes stay codes) makes those two corners enough: the image is exact, not a UTM picture
stretched onto a latitude/longitude box. Rendered on request (a 256 × 256 map in milliseconds), so a
review that rewrites a map shows at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

MIN_SIDE_PX = 1024
MAX_SIDE_PX = 2048


def map_png(cog_path: str, extent_3857: Sequence[float]) -> bytes:
    """Warps a class COG onto a Web Mercator extent and encodes it as a paletted PNG.

    Args:
        cog_path: The map's COG (colour table, class 0 = no data).
        extent_3857: ``(xmin, ymin, xmax, ymax)`` in EPSG:3857, from ``eo_tasks.store.review.list_maps``.

    Returns:
        PNG bytes: the platform's class colours, no data transparent.

    Raises:
        FileNotFoundError: The COG does not exist or GDAL cannot read it.
    """
    from osgeo import gdal

    gdal.UseExceptions()
    try:
        src = gdal.Open(cog_path)
    except RuntimeError as exc:
        raise FileNotFoundError(f"cannot read map {cog_path}: {exc}") from exc
    xmin, ymin, xmax, ymax = extent_3857
    # At least MIN_SIDE_PX: a small map's rotated pixel edges stay straight lines, not stair steps.
    side = min(max(src.RasterXSize, src.RasterYSize, MIN_SIDE_PX), MAX_SIDE_PX)
    scale = side / max(xmax - xmin, ymax - ymin)
    width, height = max(1, round((xmax - xmin) * scale)), max(1, round((ymax - ymin) * scale))
    warped = gdal.Warp(
        "",
        src,
        format="MEM",
        dstSRS="EPSG:3857",
        outputBounds=(xmin, ymin, xmax, ymax),
        width=width,
        height=height,
        resampleAlg="near",
        srcNodata=0,
        dstNodata=0,
    )
    band = warped.GetRasterBand(1)
    if band.GetRasterColorTable() is None:  # keep the palette whatever GDAL's warper does with it
        band.SetRasterColorTable(src.GetRasterBand(1).GetRasterColorTable())
    name = f"/vsimem/eo_review_{uuid.uuid4().hex}.png"
    try:
        gdal.GetDriverByName("PNG").CreateCopy(name, warped)
        data = gdal.VSIGetMemFileBuffer_unsafe(name)
        return bytes(data)
    finally:
        gdal.Unlink(name)
