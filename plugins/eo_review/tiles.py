"""XYZ tiles of an annual map: each tile warps only its own window of the COG, cached on disk.

Leaflet asks for 256 px tiles in Web Mercator (EPSG:3857) by zoom ``z`` and column/row ``x``/``y``.
A tile is the COG's window under those bounds warped with nearest neighbour (class codes stay
codes), which GDAL reads from the overview closest to the tile's resolution, so a zoomed-out view of
a 100 km AOI reads a few kilobytes and zooming in shows the 10 m pixels. Tiles are written once
under ``$EO_DATA_DIR/tiles/<aoi>/<year>/<version>/z/x/y.png``: ``version`` is a digest of the COG's
path, size and modification time, so a review (which rewrites the COG) or a re-run (a new COG) gets
fresh tiles, and the versions it replaced are removed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)
TILE_PX = 256
MAX_ZOOM = 20
WEB_MERCATOR_HALF = 20037508.342789244  # metres from the origin to the edge of EPSG:3857
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """The EPSG:3857 bounds ``(xmin, ymin, xmax, ymax)`` of an XYZ tile.

    Raises:
        ValueError: ``z``, ``x`` or ``y`` is outside the tile grid.
    """
    if not 0 <= z <= MAX_ZOOM or not (0 <= x < 2**z and 0 <= y < 2**z):
        raise ValueError(f"no tile {z}/{x}/{y} (zoom 0-{MAX_ZOOM}, x and y in 0..2^z-1)")
    size = 2 * WEB_MERCATOR_HALF / 2**z
    xmin = -WEB_MERCATOR_HALF + x * size
    ymax = WEB_MERCATOR_HALF - y * size
    return xmin, ymax - size, xmin + size, ymax


def cog_version(cog_path: str) -> str:
    """A short digest of the COG's path, size and modification time: the cache key of its tiles.

    Raises:
        FileNotFoundError: The COG does not exist.
    """
    st = os.stat(cog_path)
    return hashlib.sha256(f"{cog_path}\0{st.st_size}\0{st.st_mtime_ns}".encode()).hexdigest()[:16]


def _intersects(a: Sequence[float], b: Sequence[float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def render_tile(cog_path: str, bounds: Sequence[float]) -> bytes:
    """Warps the COG's window under ``bounds`` (EPSG:3857) to a 256 px paletted PNG.

    Args:
        cog_path: The map's COG (colour table, class 0 = no data).
        bounds: The tile's ``(xmin, ymin, xmax, ymax)`` in EPSG:3857.

    Returns:
        PNG bytes: the platform's class colours, no data transparent.

    Raises:
        FileNotFoundError: GDAL cannot read the COG.
    """
    from osgeo import gdal

    gdal.UseExceptions()
    try:
        src = gdal.Open(cog_path)
    except RuntimeError as exc:
        raise FileNotFoundError(f"cannot read map {cog_path}: {exc}") from exc
    warped = gdal.Warp(
        "",
        src,
        format="MEM",
        dstSRS="EPSG:3857",
        outputBounds=tuple(bounds),
        width=TILE_PX,
        height=TILE_PX,
        resampleAlg="near",
        srcNodata=0,
        dstNodata=0,
        overviewLevel="AUTO",
    )
    band = warped.GetRasterBand(1)
    table = src.GetRasterBand(1).GetRasterColorTable()
    if table is not None:
        table = table.Clone()
        red, green, blue, _ = table.GetColorEntry(0) if table.GetCount() else (0, 0, 0, 0)
        table.SetColorEntry(0, (red, green, blue, 0))  # class 0 is no data: transparent
        band.SetRasterColorTable(table)
    name = f"/vsimem/eo_review_tile_{uuid.uuid4().hex}.png"
    try:
        gdal.GetDriverByName("PNG").CreateCopy(name, warped)
        return bytes(gdal.VSIGetMemFileBuffer_unsafe(name))
    finally:
        gdal.Unlink(name)


def empty_tile() -> bytes:
    """A fully transparent 256 px tile (outside the map)."""
    from osgeo import gdal

    gdal.UseExceptions()
    mem = gdal.GetDriverByName("MEM").Create("", TILE_PX, TILE_PX, 1, gdal.GDT_Byte)
    table = gdal.ColorTable()
    table.SetColorEntry(0, (0, 0, 0, 0))
    mem.GetRasterBand(1).SetRasterColorTable(table)
    name = f"/vsimem/eo_review_empty_{uuid.uuid4().hex}.png"
    try:
        gdal.GetDriverByName("PNG").CreateCopy(name, mem)
        return bytes(gdal.VSIGetMemFileBuffer_unsafe(name))
    finally:
        gdal.Unlink(name)


class TileCache:
    """Tiles of the annual maps, rendered on first request and kept under ``root``."""

    def __init__(self, root: Path) -> None:
        """Uses ``root`` (``$EO_DATA_DIR/tiles`` in the api-server) as the cache folder."""
        self.root = root

    def tile(
        self, aoi: str, year: int, cog_path: str, extent_3857: Sequence[float], z: int, x: int, y: int
    ) -> bytes:
        """The PNG of one tile of one map, from the cache or rendered and cached.

        Args:
            aoi: AOI name (a file name: letters, digits, ``_`` and ``-``).
            year: Map year.
            cog_path: The map's COG.
            extent_3857: The map's extent in EPSG:3857 (tiles outside it are empty, not warped).
            z: Zoom.
            x: Column.
            y: Row.

        Returns:
            PNG bytes.

        Raises:
            ValueError: A tile outside the grid, or an AOI name that cannot be a folder name.
            FileNotFoundError: The COG is missing or unreadable.
        """
        bounds = tile_bounds(z, x, y)
        if not _SAFE_NAME.match(aoi):
            raise ValueError(f"AOI name {aoi!r} cannot name a cache folder")
        if not _intersects(bounds, extent_3857):
            return empty_tile()
        version = cog_version(cog_path)
        year_dir = self.root / aoi / str(int(year))
        path = year_dir / version / str(z) / str(x) / f"{y}.png"
        try:
            return path.read_bytes()
        except FileNotFoundError:
            pass
        png = render_tile(cog_path, bounds)
        if cog_version(cog_path) != version:  # rewritten while we read it: do not cache a mix
            return png
        self._drop_old_versions(year_dir, version)
        part = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            part.write_bytes(png)
            os.replace(part, path)  # readers see a whole tile or none
        except OSError as exc:  # the cache is an optimisation: a full disk or a race costs a re-render
            log.warning("eo-review: tile %s not cached: %s", path, exc)
            part.unlink(missing_ok=True)
        return png

    @staticmethod
    def _drop_old_versions(year_dir: Path, keep: str) -> None:
        if not year_dir.is_dir():
            return
        for old in year_dir.iterdir():
            if old.name != keep and old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
