"""The cubes' spectra of a change region, and of the stable ground around it.

A region's series is the median of its pixels' scaled features per composite (NaN where no pixel
was observed). The ground around it, of the region's old class and unchanged, gives the
landscape's own year-on-year anomaly (:func:`landscape_anomaly`): what a drought, a wet spring or
a snow year did to all of it, which the dating takes off the region's anomaly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from eo_tasks.core.cube import Cube
from eo_tasks.core.stats import nan_median

# The stable ground a region's anomaly is measured against: its old class, unchanged, this close.
REFERENCE_PAD_PX = 32
MIN_REFERENCE_PIXELS = 50
MAX_REFERENCE_PIXELS = 2000
MIN_SIMILAR_PIXELS = 20


def region_series(
    cubes: Sequence[Cube],
    box: tuple[slice, slice],
    where: np.ndarray,
    scale: np.ndarray,
    include_indices: bool,
) -> np.ndarray:
    """``(composites, features)`` median scaled features of the pixels ``where`` inside ``box``."""
    return nan_median(pixel_series(cubes, box, where, scale, include_indices))


def region_series_and_before(
    cubes: Sequence[Cube],
    year_before: Cube | None,
    box: tuple[slice, slice],
    where: np.ndarray,
    scale: np.ndarray,
    include_indices: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`region_series` over the cubes, and over the year before them (NaN where there is none)."""
    series = region_series(cubes, box, where, scale, include_indices)
    if year_before is None:
        return series, np.full((cubes[-1].shape[0], series.shape[1]), np.nan, np.float32)
    return series, region_series([year_before], box, where, scale, include_indices)


def reference_box(box: tuple[slice, slice], shape: tuple[int, ...]) -> tuple[slice, slice]:
    """A region's bounding box widened by :data:`REFERENCE_PAD_PX` (inside a grid of ``shape``)."""
    return (
        slice(max(0, box[0].start - REFERENCE_PAD_PX), min(shape[0], box[0].stop + REFERENCE_PAD_PX)),
        slice(max(0, box[1].start - REFERENCE_PAD_PX), min(shape[1], box[1].stop + REFERENCE_PAD_PX)),
    )


def reference_pixels(
    cubes: Sequence[Cube],
    year_before: Cube | None,
    around: tuple[slice, slice],
    stable: np.ndarray,
    scale: np.ndarray,
    include_indices: bool,
) -> tuple[np.ndarray, np.ndarray] | None:
    """The features of the stable ground of one class around a region, read once for every use.

    Args:
        cubes: The cubes the windows slid over, oldest first.
        year_before: The cube of the year before them, if there is one.
        around: The region's :func:`reference_box`.
        stable: ``(rows, cols)`` of ``around``: the unchanged pixels of the region's old class.
        scale: Per-feature scale (the model card's normalization std).
        include_indices: Whether the features include the spectral indices.

    Returns:
        ``(series, before)``: ``(pixels, composites, features)`` over the cubes and over the year
        before (NaN where it is unknown); None when fewer than :data:`MIN_REFERENCE_PIXELS` stable
        pixels lie around the region (an even spread of at most :data:`MAX_REFERENCE_PIXELS` is read).
    """
    count = int(stable.sum())
    if count < MIN_REFERENCE_PIXELS:
        return None
    where = stable.copy()
    if count > MAX_REFERENCE_PIXELS:
        keep = np.zeros(count, dtype=bool)
        keep[:: -(-count // MAX_REFERENCE_PIXELS)] = True
        where[where] = keep
    series = pixel_series(cubes, around, where, scale, include_indices)
    if year_before is None:
        return series, np.full((series.shape[0], cubes[-1].shape[0], series.shape[2]), np.nan, np.float32)
    return series, pixel_series([year_before], around, where, scale, include_indices)


def landscape_anomaly(series: np.ndarray, before: np.ndarray, per_year: int) -> np.ndarray:
    """How the stable ground of one class around a region differs from the years before it.

    Each reference pixel is compared with itself (so a cloud over part of them changes no mixture);
    the median over the pixels observed in both composites is the landscape's anomaly where the
    ground moved alike: where the median is larger than the pixels' median distance from it. A
    drought or snow year moves all the grass one way; crop rotation moves each field its own, and
    a change of one field or stand is one field. Zero where fewer than
    :data:`MIN_REFERENCE_PIXELS` were observed, or the ground did not move alike.

    Args:
        series: ``(pixels, composites, features)`` the reference pixels (:func:`reference_pixels`).
        before: ``(pixels, per_year, features)`` the same over the year before (NaN: unknown).
        per_year: Composites per year.

    Returns:
        ``(years, composites, features)``: composite ``c`` of the series against ``k + 1`` years
        earlier at ``[k, c]``.
    """
    full = np.concatenate([before, series], axis=1)
    n = series.shape[1]
    years = -(-n // per_year)
    out = np.zeros((years, n, series.shape[2]), np.float32)
    for k in range(years):
        lag = (k + 1) * per_year
        index = np.arange(max(0, lag - per_year), n)
        difference = series[:, index] - full[:, index + per_year - lag]
        enough = np.isfinite(difference[..., 0]).sum(axis=0) >= MIN_REFERENCE_PIXELS
        median = nan_median(difference[:, enough])
        spread = nan_median(np.abs(difference[:, enough] - median))
        out[k, index[enough]] = np.where(np.abs(median) > spread, median, 0.0)
    return out


def similar_neighbours(pixels: np.ndarray, series: np.ndarray, span: slice) -> np.ndarray | None:
    """``(composites, features)`` the median of the neighbours most like the region over ``span``.

    A class holds different ground (conifers and broadleaves, valley floor and slope: their
    seasons differ); the fifth of the neighbours whose features stayed closest to the region's
    over ``span`` (median distance) is the ground it should go on resembling. NaN in composites
    that observed under half of them; None when fewer than :data:`MIN_SIMILAR_PIXELS` were
    compared.
    """
    distance = nan_median(np.linalg.norm(pixels[:, span] - series[None, span], axis=2).T)
    known = np.isfinite(distance)
    if int(known.sum()) < MIN_SIMILAR_PIXELS:
        return None
    nearest = pixels[known & (distance <= np.percentile(distance[known], 20))]
    median = nan_median(nearest)
    median[np.isfinite(nearest[..., 0]).mean(axis=0) < 0.5] = np.nan
    return median


def pixel_series(
    cubes: Sequence[Cube],
    box: tuple[slice, slice],
    where: np.ndarray,
    scale: np.ndarray,
    include_indices: bool,
) -> np.ndarray:
    """``(pixels, composites, features)`` scaled features of the pixels ``where`` inside ``box``."""
    parts = [cube.read_pixels(box[0], box[1], where) for cube in cubes]
    reflectance = np.concatenate([r for r, _ in parts])
    valid = np.concatenate([v for _, v in parts])
    return observed_features(reflectance, valid, cubes[0].band_names, scale, include_indices)


def observed_features(
    reflectance: np.ndarray,
    valid: np.ndarray,
    band_names: Sequence[str],
    scale: np.ndarray,
    include_indices: bool,
) -> np.ndarray:
    """``(pixels, composites, features)`` scaled features, NaN where a composite observed nothing.

    Args:
        reflectance: ``(composites, pixels, bands)``.
        valid: ``(composites, pixels)`` whether a composite observed the pixel.
        band_names: Names of the band axis.
        scale: Per-feature scale (the model card's normalization std).
        include_indices: Whether the features include the spectral indices.
    """
    from eo_tasks.core.features import pixel_features

    features = pixel_features(reflectance.transpose(1, 0, 2), band_names, include_indices) / scale
    return np.asarray(np.where(valid.T[..., None] > 0, features, np.nan))
