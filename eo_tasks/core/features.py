"""Per-pixel time-series features read from a datacube, block by block.

Every consumer of pixel features (the cluster filter, the random forest, the training-set file,
and later the deep models' inference) goes through :func:`pixel_features`, so the features a model
was trained on and the ones it is applied to cannot drift apart. The cube is only ever read in
spatial blocks (``time × block² × bands``), so memory does not grow with the AOI.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from eo_tasks.core.cube import Cube
from eo_tasks.core.grid import Block, GridSpec, blocks
from eo_tasks.core.indices import INDEX_NAMES, spectral_indices


def cube_grid(cube: Cube) -> GridSpec:
    """The AOI grid a cube lies on (from its EPSG code, geotransform and shape)."""
    x0, resolution, _, y0, _, _ = cube.geotransform
    _, rows, cols, _ = cube.shape
    return GridSpec(
        epsg=cube.epsg, bounds=(x0, y0 - rows * resolution, x0 + cols * resolution, y0), resolution=resolution
    )


def feature_names(band_names: Sequence[str], include_indices: bool) -> list[str]:
    """Names of the last axis of :func:`pixel_features`: the bands, then the indices if included."""
    return [*band_names, *(INDEX_NAMES if include_indices else ())]


def index_series(reflectance: np.ndarray, band_names: Sequence[str]) -> np.ndarray:
    """The robust indices (NDVI, EVI, NDWI, NDSI, BSI) of each time step, flattened per pixel.

    Args:
        reflectance: ``(pixels, time, bands)``.
        band_names: Names of the band axis.

    Returns:
        ``(pixels, time × 5)`` float32: what the per-class k-means clusters on.
    """
    indices = spectral_indices(reflectance, band_names)
    return np.stack([indices[name] for name in INDEX_NAMES], axis=-1).reshape(len(reflectance), -1)


def pixel_features(reflectance: np.ndarray, band_names: Sequence[str], include_indices: bool) -> np.ndarray:
    """Per-pixel features at every time step: the reflectance bands, optionally followed by the indices.

    Args:
        reflectance: ``(pixels, time, bands)``.
        band_names: Names of the band axis.
        include_indices: Append NDVI, EVI, NDWI, NDSI and BSI.

    Returns:
        ``(pixels, time, features)`` float32, named by :func:`feature_names`.
    """
    features = reflectance.astype(np.float32, copy=False)
    if not include_indices:
        return features
    indices = spectral_indices(features, band_names)
    return np.concatenate([features, np.stack([indices[name] for name in INDEX_NAMES], axis=-1)], axis=-1)


def as_pixels(window: np.ndarray) -> np.ndarray:
    """A cube window ``(time, rows, cols, bands)`` as ``(rows × cols, time, bands)``, row-major."""
    t, rows, cols, nb = window.shape
    return window.transpose(1, 2, 0, 3).reshape(rows * cols, t, nb)


def iter_blocks(cube: Cube, block_px: int) -> Iterator[tuple[Block, np.ndarray, np.ndarray]]:
    """Reads a cube block by block.

    Args:
        cube: The cube.
        block_px: Side of the blocks.

    Yields:
        ``(block, reflectance, observed)``: ``(rows × cols, time, bands)`` reflectance and
        ``(rows × cols,)`` share of the year's composites that observed each pixel (not gap-filled).
    """
    for block in blocks(cube_grid(cube), block_px):
        reflectance, valid = cube.read(
            slice(block.row0, block.row0 + block.rows), slice(block.col0, block.col0 + block.cols)
        )
        yield block, as_pixels(reflectance), valid.mean(axis=0).reshape(-1)


def read_pixels(
    cube: Cube, rows: np.ndarray, cols: np.ndarray, block_px: int
) -> tuple[np.ndarray, np.ndarray]:
    """Reads the time series of scattered pixels, one cube block at a time.

    Args:
        cube: The cube.
        rows: Row of each pixel on the AOI grid.
        cols: Column of each pixel.
        block_px: Side of the blocks read (only blocks holding a requested pixel are read).

    Returns:
        ``(reflectance, observed)``: ``(pixels, time, bands)`` float32 in the order requested, and
        ``(pixels,)`` the share of composites that observed each pixel.
    """
    t, _, _, nb = cube.shape
    reflectance = np.empty((len(rows), t, nb), dtype=np.float32)
    observed = np.empty(len(rows), dtype=np.float32)
    block_of = (rows // block_px) * (-(-cube.shape[2] // block_px)) + cols // block_px
    for key in np.unique(block_of):
        members = np.flatnonzero(block_of == key)
        r0 = int(rows[members[0]] // block_px * block_px)
        c0 = int(cols[members[0]] // block_px * block_px)
        window, valid = cube.read(slice(r0, r0 + block_px), slice(c0, c0 + block_px))
        local_rows, local_cols = rows[members] - r0, cols[members] - c0
        reflectance[members] = window[:, local_rows, local_cols, :].transpose(1, 0, 2)
        observed[members] = valid[:, local_rows, local_cols].mean(axis=0)
    return reflectance, observed


def observed_fraction(cube: Cube, block_px: int) -> np.ndarray:
    """Share of the year's composites that observed each pixel, reading only the cube's ``valid`` mask.

    Args:
        cube: The cube.
        block_px: Side of the blocks read.

    Returns:
        ``(rows, cols)`` float32 in 0..1 (0: never seen, the whole series is gap-filled).
    """
    import h5py

    _, rows, cols, _ = cube.shape
    share = np.empty((rows, cols), dtype=np.float32)
    with h5py.File(cube.path, "r") as f:
        valid = f["valid"]
        for block in blocks(cube_grid(cube), block_px):
            window = (slice(block.row0, block.row0 + block.rows), slice(block.col0, block.col0 + block.cols))
            share[window] = valid[:, window[0], window[1]].mean(axis=0)
    return share
