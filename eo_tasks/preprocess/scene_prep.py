"""Per-scene preparation: reflectance scaling, validity masks, warping onto the AOI grid with GDAL.

Everything works on one spatial block of the AOI grid at a time, so memory is bounded by the
block size, never by the scene or the AOI. Reflectance bands are warped bilinearly, the quality
layers (SCL, QA_PIXEL) with nearest neighbour; Sentinel-2 20 m bands land on the 10 m grid the same
way. Snow stays a surface (a class), not a mask.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from eo_tasks.core.errors import EOError
from eo_tasks.core.grid import Block, GridSpec
from eo_tasks.core.scenes import SceneInput, boa_offset_to_remove
from eo_tasks.preprocess.harmonize import oli_to_msi
from eo_tasks.preprocess.safe import SafeProductError, as_band_files

# Scene Classification Layer classes that are not a clear view of the surface.
SCL_INVALID = frozenset({0, 1, 3, 8, 9, 10})  # no data, saturated/defective, shadow, cloud med/high, cirrus
# QA_PIXEL bits that invalidate a Landsat pixel: fill, dilated cloud, cirrus, cloud, cloud shadow.
QA_INVALID_BITS = (0, 1, 2, 3, 4)
S2_SCALE = 1e-4
LANDSAT_SCALE, LANDSAT_OFFSET = 2.75e-5, -0.2
CUBE_BANDS = ("blue", "green", "red", "rededge1", "rededge2", "rededge3", "nir", "nir08", "swir16", "swir22")


class SceneReadError(EOError, OSError):
    """A scene's band is missing or unreadable; the scene is skipped and reported, the run goes on."""


def scl_valid(scl: np.ndarray) -> np.ndarray:
    """True where the Sentinel-2 SCL says the surface is seen clearly (snow and water included)."""
    return ~np.isin(scl, list(SCL_INVALID))


def qa_pixel_valid(qa: np.ndarray) -> np.ndarray:
    """True where no invalidating Landsat QA_PIXEL bit is set (snow and water stay valid)."""
    mask = sum(1 << bit for bit in QA_INVALID_BITS)
    return (qa.astype(np.uint16) & mask) == 0


def s2_reflectance(dn: np.ndarray, offset: int) -> np.ndarray:
    """Sentinel-2 L2A DN → reflectance, ``(DN − offset) / 10000``; DN 0 (no data) → NaN."""
    out = (dn.astype(np.float32) - offset) * np.float32(S2_SCALE)
    out[dn == 0] = np.nan
    return out


def landsat_reflectance(dn: np.ndarray) -> np.ndarray:
    """Landsat Collection-2 L2 DN → reflectance, ``DN · 2.75e-5 − 0.2``; DN 0 (fill) → NaN."""
    out = dn.astype(np.float32) * np.float32(LANDSAT_SCALE) + np.float32(LANDSAT_OFFSET)
    out[dn == 0] = np.nan
    return out


# Per-thread cache of open rasters and their EPSG codes: every block reads the same files again, and
# a GDAL dataset handle must never be used by two threads at once.
# A real tile-year reads ~1,000 band files (≈70 S2 scenes × 12 bands + Landsat): all stay open when
# the process may hold that many descriptors (the soft limit is raised to the hard one).
_LOCAL = threading.local()
_MAX_OPEN = 1536
# GDAL's block cache is per process (default 5 % of RAM: 64 workers × 12.8 GB on a 256 GB node);
# blocks are read once per cube block, so a small cache per worker is enough (GDAL_CACHEMAX wins).
GDAL_CACHE_BYTES = 256 * 1024**2


def _max_open() -> int:
    """Datasets kept open per thread: ``_MAX_OPEN``, within the process's descriptor limit."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < _MAX_OPEN + 256:
        target = _MAX_OPEN + 256 if hard == resource.RLIM_INFINITY else min(hard, _MAX_OPEN + 256)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return _MAX_OPEN if soft == resource.RLIM_INFINITY else max(16, min(_MAX_OPEN, soft - 256))


def _datasets() -> OrderedDict[str, tuple[Any, str | None]]:
    if not hasattr(_LOCAL, "datasets"):
        from osgeo import gdal

        if not os.environ.get("GDAL_CACHEMAX"):
            gdal.SetCacheMax(GDAL_CACHE_BYTES)
        _LOCAL.datasets = OrderedDict()
        _LOCAL.max_open = _max_open()
    return _LOCAL.datasets


def _open(path: str) -> tuple[Any, str | None]:
    """The open dataset of ``path`` and its EPSG code (None when it has none), least recently used out."""
    from osgeo import gdal

    gdal.UseExceptions()
    cache = _datasets()
    entry = cache.get(path)
    if entry is None:
        dataset = gdal.Open(path)
        srs = dataset.GetSpatialRef()
        epsg = (
            srs.GetAuthorityCode(None) if srs is not None and srs.GetAuthorityName(None) == "EPSG" else None
        )
        entry = cache[path] = (dataset, epsg)
        if len(cache) > _LOCAL.max_open:
            cache.popitem(last=False)
    else:
        cache.move_to_end(path)
    return entry


def _read_aligned(
    dataset: Any, epsg: str | None, grid: GridSpec, block: Block, resampling: str
) -> np.ndarray | None:
    """Reads a block without warping where the raster shares the grid's CRS and pixel lattice.

    That is the common case (Sentinel-2 in the AOI's UTM zone, 10 m bands as they are, 20 m bands
    upsampled 2x), and a windowed read is several times cheaper than a warp. Returns None when the
    raster is not aligned, so the caller warps instead.
    """
    from osgeo import gdal

    x0, res, rot1, y0, rot2, neg_res = dataset.GetGeoTransform()
    if rot1 or rot2 or abs(res + neg_res) > 1e-9 or epsg != str(grid.epsg):
        return None
    factor = res / grid.resolution
    r = round(factor)
    xmin, _, _, ymax = block.bounds(grid)
    fine_col, fine_row = (xmin - x0) / grid.resolution, (y0 - ymax) / grid.resolution
    if r < 1 or abs(factor - r) > 1e-9 or abs(fine_col - round(fine_col)) > 1e-6:
        return None
    if abs(fine_row - round(fine_row)) > 1e-6:
        return None
    fc0, fr0 = round(fine_col), round(fine_row)
    pad = 1 if r > 1 else 0  # a source pixel of context so bilinear edges match a warp
    c0, c1 = max(fc0 // r - pad, 0), min(-(-(fc0 + block.cols) // r) + pad, dataset.RasterXSize)
    r0, r1 = max(fr0 // r - pad, 0), min(-(-(fr0 + block.rows) // r) + pad, dataset.RasterYSize)
    band = dataset.GetRasterBand(1)
    out = np.zeros((block.rows, block.cols), dtype=gdal_array_type(band))
    if c0 >= c1 or r0 >= r1:
        return out
    alg = gdal.GRIORA_Bilinear if resampling == "bilinear" else gdal.GRIORA_NearestNeighbour
    data = band.ReadAsArray(
        c0, r0, c1 - c0, r1 - r0, buf_xsize=(c1 - c0) * r, buf_ysize=(r1 - r0) * r, resample_alg=alg
    )
    j0, i0 = fc0 - c0 * r, fr0 - r0 * r  # block pixel (0, 0) in the read buffer
    ks, ke = max(0, -j0), min(block.cols, data.shape[1] - j0)
    rs, re = max(0, -i0), min(block.rows, data.shape[0] - i0)
    if ks < ke and rs < re:
        out[rs:re, ks:ke] = data[i0 + rs : i0 + re, j0 + ks : j0 + ke]
    return out


def gdal_array_type(band: Any) -> np.dtype[Any]:
    """The numpy dtype of a GDAL band."""
    from osgeo import gdal_array

    return np.dtype(gdal_array.GDALTypeCodeToNumericTypeCode(band.DataType))


def warp_band(path: str, grid: GridSpec, block: Block, resampling: str) -> np.ndarray:
    """Reads one band file onto a block of the AOI grid (any source CRS or resolution).

    Args:
        path: A GDAL-readable raster (COG, GeoTIFF, JP2, ``/vsizip/`` path).
        grid: The AOI grid.
        block: The window to produce.
        resampling: ``bilinear`` for reflectance, ``near`` for quality layers.

    Returns:
        ``(block.rows, block.cols)`` array in the source data type, 0 outside the source.

    Raises:
        SceneReadError: The file is missing or unreadable.
    """
    from osgeo import gdal

    try:
        dataset, epsg = _open(path)
        aligned = _read_aligned(dataset, epsg, grid, block, resampling)
        if aligned is not None:
            return aligned
        warped = gdal.Warp(
            "",
            dataset,
            format="MEM",
            outputBounds=block.bounds(grid),
            width=block.cols,
            height=block.rows,
            dstSRS=f"EPSG:{grid.epsg}",
            resampleAlg=resampling,
            srcNodata=0,
            dstNodata=0,
        )
        return np.asarray(warped.GetRasterBand(1).ReadAsArray())
    except RuntimeError as err:
        _datasets().pop(path, None)
        raise SceneReadError(f"{path}: {err}") from err


def read_block(
    scene: SceneInput, grid: GridSpec, block: Block, bands: Sequence[str] = CUBE_BANDS
) -> np.ndarray:
    """One scene's clear-sky reflectance on one block.

    Sentinel-2 DNs lose their processing-baseline offset (once), Landsat DNs are scaled and
    harmonized to Sentinel-2 (HLS); pixels flagged by SCL / QA_PIXEL become NaN, and so do bands the
    sensor does not have (Landsat has no red-edge or 10 m NIR).

    Returns:
        ``(rows, cols, len(bands))`` float32 reflectance, NaN where not clearly observed.
    """
    out = np.full((block.rows, block.cols, len(bands)), np.nan, dtype=np.float32)
    scene = _band_files(scene)
    if scene.sensor == "S2":
        valid = scl_valid(warp_band(_file(scene, "scl"), grid, block, "near"))
        offset = boa_offset_to_remove(scene.properties)
        for i, band in enumerate(bands):
            out[..., i] = s2_reflectance(warp_band(_file(scene, band), grid, block, "bilinear"), offset)
    else:
        valid = qa_pixel_valid(warp_band(_file(scene, "qa_pixel"), grid, block, "near"))
        for i, band in enumerate(bands):
            if band in scene.files:
                dn = warp_band(_file(scene, band), grid, block, "bilinear")
                out[..., i] = oli_to_msi(landsat_reflectance(dn), band)
    out[~valid] = np.nan
    return out


def _band_files(scene: SceneInput) -> SceneInput:
    """A SAFE product's band files (unpacked once), any other scene as it is."""
    try:
        return as_band_files(scene)
    except SafeProductError as err:
        raise SceneReadError(f"{scene.id}: {err}") from err


def _file(scene: SceneInput, band: str) -> str:
    try:
        return scene.files[band]
    except KeyError:
        raise SceneReadError(f"{scene.id}: no {band} file") from None


def check_scene(scene: SceneInput, bands: Sequence[str] = CUBE_BANDS) -> None:
    """Opens every file the scene needs and reads a pixel, so a broken scene is caught before any block.

    Raises:
        SceneReadError: Naming the scene and the band at fault.
    """
    from osgeo import gdal

    gdal.UseExceptions()
    scene = _band_files(scene)
    needed = [b for b in bands if scene.sensor == "S2" or b in scene.files]
    needed.append("scl" if scene.sensor == "S2" else "qa_pixel")
    for band in needed:
        path = _file(scene, band)
        try:
            dataset = gdal.Open(path)
            dataset.GetRasterBand(1).ReadAsArray(0, 0, 1, 1)
            size = dataset.RasterXSize, dataset.RasterYSize
            dataset.GetRasterBand(1).ReadAsArray(size[0] - 1, size[1] - 1, 1, 1)
        except RuntimeError as err:
            raise SceneReadError(f"{scene.id}: band {band} ({path}) is unreadable: {err}") from err
