"""The break of a change region's features: where its spectral series jumps.

The published refinement dates a change at the largest jump of the region's median features inside
the first window whose label flipped (:func:`break_composite`). Seasons jump too: a harvest or a
leaf fall recurs a year earlier (:func:`seasonal_jump`). A change in stages has its largest jump
at the second stage: a pond dug in a field is half water for a few weeks before it fills, so
``platform`` rules go back to the first stage (:func:`first_stage`). A change to open water is
bounded by its water index (:func:`open_water_bounds`): it began at most a basin's filling time
before the water index rose, and not after.
"""

from __future__ import annotations

import numpy as np

from eo_tasks.core.stats import nan_median
from eo_tasks.maps.lasting_breaks import MIN_OBSERVED_AFTER, SHARE

BREAK_HALF = 2  # composites on each side of a candidate break
# A composite before the largest jump is the change's first stage when it is already this share
# of the jump's whole step away from the level before it.
STAGE_SHARE = 0.25
# Open water shows at most this many composites after the ground began to change: a dammed basin
# fills in about six weeks (three composites), and its water index passes WATER_WAY of the way from
# the dry level to the water's after about half of that.
FILL_COMPOSITES = 2
WATER_WAY = 0.2


def break_composite(series: np.ndarray, lo: int, hi: int, half: int = BREAK_HALF) -> int:
    """The composite in ``lo..hi`` where a feature series breaks most.

    The break is the largest distance between the medians of the ``half`` composites from a
    candidate on and the ``half`` before it. Unobserved composites (NaN) are ignored.

    Args:
        series: ``(composites, features)`` scaled features (e.g. a change region's median).
        lo: First candidate composite (at least 1).
        hi: Last candidate composite.
        half: Composites on each side of a candidate.

    Returns:
        The composite index of the break (``lo`` when nothing in range was observed).
    """
    best, best_jump = lo, -1.0
    for c in range(max(lo, 1), min(hi, series.shape[0] - 1) + 1):
        jump = _jump(series, c, half)
        if jump > best_jump:  # NaN compares False: skipped
            best, best_jump = c, jump
    return best


def _jump(series: np.ndarray, c: int, half: int = BREAK_HALF) -> float:
    """The distance between the medians of the ``half`` composites from ``c`` on and the ``half`` before."""
    after, before = nan_median(series[c : c + half]), nan_median(series[max(0, c - half) : c])
    return float(np.linalg.norm(after - before))  # NaN where either side was never observed


def seasonal_jump(series: np.ndarray, before: np.ndarray, per_year: int, c: int, reach: int = 2) -> bool:
    """Whether the features' jump at composite ``c`` is the ground's season.

    It is when the same region jumped at least half as much within ``reach`` composites of it a
    year earlier: a harvest, a sowing or a leaf fall comes back every year, a change does not.
    Unknown (NaN) a year earlier: not seasonal.

    Args:
        series: ``(composites, features)`` the region's median scaled features.
        before: ``(per_year, features)`` the same for the year before the series (NaN: unknown).
        per_year: Composites per year.
        c: A composite index of ``series`` (a features' break).
        reach: Composites on either side of the year-earlier composite.
    """
    full = np.concatenate([before, series])
    at = c + per_year
    jump = _jump(full, at)
    earlier = (_jump(full, k) for k in range(max(1, c - reach), c + reach + 1))
    return any(e >= 0.5 * jump for e in earlier)  # NaN compares False


def first_stage(series: np.ndarray, c: int, lo: int) -> int:
    """The first stage of a change whose features break most at composite ``c``.

    Up to :data:`BREAK_HALF` composites before ``c`` belong to the change when every observed
    composite from there to ``c`` is on the way from the level before them to the level from ``c``
    on: at least :data:`STAGE_SHARE` of that step away from the one, and nearer the other than the
    level before was. Half water before the pond fills is; a field's autumn, or snow that melts at
    ``c``, is not. The level before is the median of the :data:`BREAK_HALF` observed composites
    before the candidate.

    Args:
        series: ``(composites, features)`` the region's median scaled features.
        c: The features' break (:func:`break_composite`).
        lo: First composite the change may be dated at.

    Returns:
        The earliest composite in ``max(lo, c - BREAK_HALF)..c`` that passes (``c`` when none does).
    """
    after = nan_median(series[c : c + BREAK_HALF])
    first = c
    for k in range(c - 1, max(lo, 1, c - BREAK_HALF) - 1, -1):
        earlier = series[max(0, k - 2 * BREAK_HALF) : k]
        earlier = earlier[np.isfinite(earlier[:, 0])][-BREAK_HALF:]
        stage = series[k:c][np.isfinite(series[k:c, 0])]
        if earlier.shape[0] < BREAK_HALF or stage.shape[0] == 0:
            continue
        level = nan_median(earlier)
        step = float(np.linalg.norm(after - level))
        away = np.linalg.norm(stage - level, axis=1) >= STAGE_SHARE * step
        on_the_way = np.linalg.norm(stage - after, axis=1) < step  # nearer the level after: no season's peak
        if np.all(away & on_the_way):
            first = k
    return first


def open_water_bounds(ndwi: np.ndarray, lookback: int) -> tuple[int, int] | None:
    """The composites between which a change to open water began, from its water index.

    The water arrives at the first wet composite (NDWI over 0) after a dry one from which
    :data:`~eo_tasks.maps.lasting_breaks.SHARE` of the observed composites (at least
    :data:`~eo_tasks.maps.lasting_breaks.MIN_OBSERVED_AFTER`) stay wet, and before which that
    share of the observed ones of the ``lookback`` composites were dry (water that came and went
    before is no arrival). The index rises on the way there: the rise starts at the first of the
    observed composites just before the arrival that are all over :data:`WATER_WAY` of the way from
    the dry level (the median of those ``lookback`` composites; the last observed one where none
    is) to the water's (the median from the arrival on). The change began no later than the rise's
    start, and no earlier than :data:`FILL_COMPOSITES` before it or before the unobserved gap just
    before it.

    Args:
        ndwi: ``(composites,)`` the region's median NDWI, NaN where unobserved or snow.
        lookback: Composites before the water's arrival that give the dry level.

    Returns:
        ``(first, last)`` composite the change may be dated at; None where no water arrived after
        dry ground.
    """
    seen = np.flatnonzero(np.isfinite(ndwi))
    wet = ndwi[seen] > 0.0
    after = np.arange(seen.size, 0, -1)  # observed composites from each on
    stays = (np.cumsum(wet[::-1])[::-1] >= SHARE * after) & (after >= MIN_OBSERVED_AFTER)
    arrives = np.flatnonzero(wet & stays & np.concatenate([[False], ~wet[:-1]]))
    if arrives.size == 0:
        return None
    k = int(arrives[0])
    earlier = ndwi[max(0, seen[k] - lookback) : seen[k]]
    earlier = earlier[np.isfinite(earlier)]
    if earlier.size and np.mean(earlier > 0.0) > 1.0 - SHARE:  # wet before too: no arrival
        return None
    dry = float(np.median(earlier)) if earlier.size else float(ndwi[seen[k - 1]])
    level = dry + WATER_WAY * (float(np.median(ndwi[seen[k:]])) - dry)
    rise = k
    while rise > 0 and ndwi[seen[rise - 1]] > level:
        rise -= 1
    if rise == 0:
        return None
    return max(0, int(seen[rise - 1]) + 1 - FILL_COMPOSITES), int(seen[rise])
