"""Temporal compositing to a fixed calendar, gap filling along time, and spectral indices.

Every year is cut into the same ``n`` windows (by day of year), so composite k of 2021 and composite
k of 2022 describe the same season and models trained on one year apply to the next. Pixels left
without a clear observation in a window are filled by linear interpolation in time between the
nearest observed composites (nearest value at the ends of the year); the cube keeps which values
were observed and which were filled.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from eo_tasks.errors import ConfigError


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
        if stack.shape[0] == 1:
            result[k] = stack[0]
        else:
            with warnings.catch_warnings():  # an all-NaN pixel in a window is expected, not an error
                warnings.simplefilter("ignore", RuntimeWarning)
                result[k] = np.nanmedian(stack, axis=0)
    observed = np.any(np.isfinite(result), axis=-1)
    return result, observed


def fill_gaps(series: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fills NaNs along axis 0 by linear interpolation between the nearest finite values.

    Values before the first (after the last) finite value take that value. A series with no finite
    value at all stays NaN.

    Args:
        series: ``(time, ...)`` float array.

    Returns:
        ``(filled, was_filled)`` where ``was_filled`` marks the values that were NaN and got a value.
    """
    t = series.shape[0]
    flat = series.reshape(t, -1).astype(np.float32, copy=True)
    finite = np.isfinite(flat)
    index = np.arange(t)[:, None]
    prev_idx = np.maximum.accumulate(np.where(finite, index, -1), axis=0)
    next_idx = np.flip(np.minimum.accumulate(np.flip(np.where(finite, index, t), axis=0), axis=0), axis=0)
    has_prev = prev_idx >= 0
    has_next = next_idx < t
    cols = np.arange(flat.shape[1])[None, :]
    prev_val = flat[np.clip(prev_idx, 0, t - 1), cols]
    next_val = flat[np.clip(next_idx, 0, t - 1), cols]
    span = np.where(has_prev & has_next, next_idx - prev_idx, 1)
    weight = np.where(has_prev & has_next, (index - prev_idx) / np.maximum(span, 1), 0.0)
    interpolated = np.where(
        has_prev & has_next,
        prev_val + weight * (next_val - prev_val),
        np.where(has_prev, prev_val, next_val),
    )
    missing = ~finite
    flat[missing] = interpolated[missing]
    was_filled = missing & np.isfinite(flat)
    return flat.reshape(series.shape), was_filled.reshape(series.shape)


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
