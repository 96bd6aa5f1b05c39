"""Temporal compositing to a fixed calendar, gap filling along time, and spectral indices.

Every year is cut into the same ``n`` windows (by day of year), so composite k of 2021 and composite
k of 2022 describe the same season and models trained on one year apply to the next. Pixels left
without a clear observation in a window are filled by linear interpolation in time between the
nearest observed composites (nearest value at the ends of the year); the cube keeps which values
were observed and which were filled.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from eo_tasks.core.errors import ConfigError


@dataclass(frozen=True)
class Calendar:
    """``n_composites`` equal day-of-year windows per year.

    Attributes:
        n_composites: Windows per year (e.g. 24: about 15 days each).
    """

    n_composites: int = 24

    def __post_init__(self) -> None:
        if not 1 <= self.n_composites <= 365:
            raise ConfigError(f"calendar: n_composites must be 1..365, got {self.n_composites}")

    def window_of(self, when: dt.date) -> int:
        """Index of the window containing ``when`` (day 366 of leap years joins the last window)."""
        day = min(when.timetuple().tm_yday, 365) - 1
        return day * self.n_composites // 365

    def centers(self, year: int) -> list[dt.date]:
        """The representative date of each window of ``year``."""
        start = dt.date(year, 1, 1)
        return [
            start + dt.timedelta(days=(2 * k + 1) * 365 // (2 * self.n_composites))
            for k in range(self.n_composites)
        ]


def nan_median(stack: np.ndarray) -> np.ndarray:
    """Median along axis 0 ignoring NaNs (NaN where a column has no finite value).

    Sort-based: NaNs sort last, so the median of the ``n`` finite values of a column sits at
    rows ``(n-1)//2`` and ``n//2``. Several times faster than ``np.nanmedian`` for the few
    observations a compositing window holds.
    """
    if stack.shape[0] == 2:  # the common case: two looks in a window
        a, b = stack
        return np.where(np.isnan(a), b, np.where(np.isnan(b), a, (a + b) / 2)).astype(np.float32)
    ordered = np.sort(stack, axis=0)
    count = np.isfinite(stack).sum(axis=0)
    lower = np.take_along_axis(ordered, np.maximum((count - 1) // 2, 0)[None], axis=0)[0]
    upper = np.take_along_axis(ordered, (count // 2)[None].clip(max=stack.shape[0] - 1), axis=0)[0]
    return np.where(count > 0, (lower + upper) / 2, np.nan).astype(np.float32)


def composite(
    observations: np.ndarray, windows: Sequence[int], n_windows: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-window median of the clear observations.

    Args:
        observations: ``(n_obs, ..., bands)`` float reflectance, NaN where invalid or missing.
        windows: Window index of each observation.
        n_windows: Number of windows.

    Returns:
        ``(composites, observed)``: ``(n_windows, ..., bands)`` medians (NaN where a window had no
        clear observation for that band) and ``(n_windows, ...)`` True where any band was observed.
    """
    shape = (n_windows, *observations.shape[1:])
    result = np.full(shape, np.nan, dtype=np.float32)
    windows_arr = np.asarray(windows)
    for k in np.unique(windows_arr):
        stack = observations[windows_arr == k]
        result[k] = stack[0] if stack.shape[0] == 1 else nan_median(stack)
    observed = np.any(np.isfinite(result), axis=-1)
    return result, observed


def fill_gaps(series: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fills NaNs along axis 0 by linear interpolation between the nearest finite values.

    Values before the first (after the last) finite value take that value. A series with no finite
    value at all stays NaN. One forward and one backward sweep over time, vectorized over pixels,
    so memory stays a few copies of the series.

    Args:
        series: ``(time, ...)`` float array.

    Returns:
        ``(filled, was_filled)`` where ``was_filled`` marks the values that were NaN and got a value.
    """
    t = series.shape[0]
    flat = series.reshape(t, -1).astype(np.float32, copy=True)
    finite = np.isfinite(flat)
    prev_val = np.empty_like(flat)
    prev_idx = np.empty(flat.shape, dtype=np.int16)
    last_val = np.full(flat.shape[1], np.nan, dtype=np.float32)
    last_idx = np.full(flat.shape[1], -1, dtype=np.int16)
    for i in range(t):  # forward: the last finite value at or before i
        np.copyto(last_val, flat[i], where=finite[i])
        last_idx[finite[i]] = i
        prev_val[i], prev_idx[i] = last_val, last_idx
    filled = flat.copy()
    last_val.fill(np.nan)
    last_idx.fill(-1)
    for i in range(t - 1, -1, -1):  # backward: the next finite value at or after i, then interpolate
        np.copyto(last_val, flat[i], where=finite[i])
        last_idx[finite[i]] = i
        gap = ~finite[i]
        if not gap.any():
            continue
        p_val, p_idx = prev_val[i][gap], prev_idx[i][gap]
        n_val, n_idx = last_val[gap], last_idx[gap]
        both = (p_idx >= 0) & (n_idx >= 0)
        weight = np.where(both, (i - p_idx) / np.maximum(n_idx - p_idx, 1), 0.0).astype(np.float32)
        value = np.where(both, p_val + weight * (n_val - p_val), np.where(p_idx >= 0, p_val, n_val))
        filled[i][gap] = value
    was_filled = ~finite & np.isfinite(filled)
    return filled.reshape(series.shape), was_filled.reshape(series.shape)


INDEX_NAMES = ("ndvi", "evi", "ndwi", "ndsi", "bsi")


def spectral_indices(reflectance: np.ndarray, band_names: Sequence[str]) -> dict[str, np.ndarray]:
    """The robust indices the training-set builder clusters on.

    NDVI (vegetation), EVI (vegetation, less saturated), NDWI (McFeeters: open water), NDSI (snow),
    BSI (bare soil index of Rikimaru et al.).

    Args:
        reflectance: ``(..., bands)`` surface reflectance.
        band_names: Names of the last axis (needs blue, green, red, nir or nir08, swir16).

    Returns:
        Index name → array of shape ``reflectance.shape[:-1]``.
    """
    idx = {name: i for i, name in enumerate(band_names)}
    nir_key = "nir" if "nir" in idx else "nir08"
    blue, green, red, nir, swir = (
        reflectance[..., idx[name]].astype(np.float32) for name in ("blue", "green", "red", nir_key, "swir16")
    )

    def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            out = num / den
        return np.where(np.abs(den) > 1e-6, out, 0.0).astype(np.float32)

    return {
        "ndvi": ratio(nir - red, nir + red),
        "evi": np.clip(ratio(2.5 * (nir - red), nir + 6 * red - 7.5 * blue + 1), -1, 1),
        "ndwi": ratio(green - nir, green + nir),
        "ndsi": ratio(green - swir, green + swir),
        "bsi": ratio((swir + red) - (nir + blue), (swir + red) + (nir + blue)),
    }
