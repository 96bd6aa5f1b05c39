"""Statistics the stages share."""

from __future__ import annotations

import numpy as np


def nan_median(stack: np.ndarray) -> np.ndarray:
    """Median along axis 0 ignoring NaNs (NaN where a column has no finite value), as float32.

    Sort-based: NaNs sort last, so the median of the ``n`` finite values of a column sits at
    rows ``(n-1)//2`` and ``n//2``. Many times faster than ``np.nanmedian``, which loops over the
    columns in Python once a NaN is present: for the few observations a compositing window holds
    as for the thousands of pixels around a change region.
    """
    if stack.shape[0] == 2:  # the common case: two looks in a window
        a, b = stack
        return np.where(np.isnan(a), b, np.where(np.isnan(b), a, (a + b) / 2)).astype(np.float32)
    ordered = np.sort(stack, axis=0)
    count = np.isfinite(stack).sum(axis=0)
    lower = np.take_along_axis(ordered, np.maximum((count - 1) // 2, 0)[None], axis=0)[0]
    upper = np.take_along_axis(ordered, (count // 2)[None].clip(max=stack.shape[0] - 1), axis=0)[0]
    return np.where(count > 0, (lower + upper) / 2, np.nan).astype(np.float32)
