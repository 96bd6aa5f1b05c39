"""Temporal compositing to a fixed calendar, gap filling along time, and spectral indices.

Every year is cut into the same ``n`` windows (by day of year), so composite k of 2021 and composite
k of 2022 describe the same season and models trained on one year apply to the next. Pixels left
without a clear observation in a window are filled by linear interpolation in time between the
nearest observed composites (nearest value at the ends of the year); the cube keeps which values
were observed and which were filled.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from eo_tasks.core.stats import nan_median


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
