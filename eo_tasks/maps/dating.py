"""Dating change regions, and checking them against the ground's own spectra.

The window labels only say that a change happened within the first window whose label flipped;
the spectral series of the changed region says where inside that window. Two series can be
searched for the break:

- the region's median features (the published refinement,
  :mod:`eo_tasks.maps.feature_breaks`): the largest jump inside the window. Seasons jump too
  (green-up, leaf fall, snow), and a change in stages (fields stripped to soil, then built on)
  has its largest jump at the second stage, months after the change began;
- the region's **year-on-year anomaly** (``platform`` rules): each composite minus the same
  composite of the year before. Seasons cancel. The date is the first composite that leaves the
  ground's usual variation for good (:func:`first_lasting_departure`), else a two-level fit
  (:func:`lasting_break`). Where no year before is known (the series' first year), the region is
  compared with the unchanged ground of its old class around it that was most like it before
  (:func:`first_lasting_shift`); the features' break remains where neither dates it, unless
  the region made such a jump a year earlier too (a harvest), or it is a
  field turned to bare or built ground with no year before its break: then the labels' date stands.
  The anomaly of the stable ground of the region's old class around it (:func:`landscape_anomaly`)
  is taken off first: a drought or a snow year moves all of that ground alike.

The same anomaly checks the region: a permanent change keeps it up to the end of the series
(:func:`region_evidence`'s ``lasting``), while a label flip the ground never made (a winter
confusion between shrubs and trees, a drought or snow year) leaves it low or lets it fall back.
All thresholds are in units of the features' spread (the model card's normalization std) and were
chosen on the accuracy suite (README, *Accuracy on landscapes it was not tuned on*).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from eo_tasks.core.stats import nan_median
from eo_tasks.maps.feature_breaks import BREAK_HALF, break_composite, first_stage, seasonal_jump
from eo_tasks.maps.spectra import similar_neighbours

# A region's anomaly after its break below which the ground shows no lasting change.
MIN_LASTING_ANOMALY = 0.5


def gap_middle(norms: np.ndarray, first_seen: int, lo: int) -> int:
    """The middle of the unobserved composites just before ``first_seen`` (itself when there are none).

    A change first seen after a cloudy gap happened somewhere in it; its middle is the date least
    far from any day in it. The gap is not followed back past ``lo``.
    """
    gap_start = first_seen
    while gap_start > max(lo, 1) and np.isnan(norms[gap_start - 1]):
        gap_start -= 1
    return (gap_start + first_seen) // 2


def despiked(norms: np.ndarray, margin: float = 0.5) -> np.ndarray:
    """Anomaly magnitudes without short spikes (NaN instead).

    A value is a spike when it exceeds twice, plus ``margin``, the lower of the two observed
    values before it and the lower of the two after it, and the anomaly then falls back to the
    level before it: one or two composites of a snowy winter or a missed cloud, not the first
    composites of a change (the anomaly stays up after those, even while it decays).
    """
    observed = np.flatnonzero(np.isfinite(norms))
    out = norms.copy()
    for k, i in enumerate(observed):
        before, after = norms[observed[max(0, k - 2) : k]], norms[observed[k + 1 : k + 3]]
        if before.size == 0 or after.size < 2:
            continue
        level = 2 * before.min() + margin  # what the ground's own variation reaches
        if norms[i] > level and norms[i] > 2 * after.min() + margin and after.min() <= level:
            out[i] = np.nan
    return out


def first_lasting_departure(
    series: np.ndarray,
    before: np.ndarray,
    per_year: int,
    lo: int,
    hi: int,
    lookback: int,
    landscape: np.ndarray | None = None,
    usual_in_window: bool = False,
) -> int | None:
    """The first composite in ``lo..hi`` from which the anomaly leaves the ground's usual variation.

    The ground's usual variation is the median year-on-year anomaly ``L`` of the ``lookback``
    composites before ``lo``, one observed being enough; a composite departs above ``2 L + 0.5``.
    The change is the first departing composite after which the anomaly, against the year before
    it, never comes back (to ``L + 0.5`` or less) for two observed composites in a row: a snowy
    January departs and comes back, a fire departs for good though black ground differs less from
    a leafless forest in winter.

    With ``usual_in_window`` and nothing known before ``lo``, the window's first :data:`BREAK_HALF`
    observed composites are the usual variation (a clearing, not the buildings, dates a construction).

    Returns:
        The composite index, or None when no usual variation is known or nothing departs.
    """
    norms = despiked(np.linalg.norm(year_on_year(series, before, per_year, landscape), axis=1))
    usual = norms[max(0, lo - lookback) : lo]
    if not np.isfinite(usual).any():
        known = lo + np.flatnonzero(np.isfinite(norms[lo : hi + 1]))
        if not usual_in_window or known.size <= BREAK_HALF:
            return None
        usual, lo = norms[known[:BREAK_HALF]], int(known[BREAK_HALF - 1]) + 1

    def since(c: int) -> np.ndarray:
        return np.linalg.norm(against_the_year_before(series, before, per_year, c, landscape), axis=1)

    return _first_for_good(norms, lo, hi, float(nan_median(usual)), since)


def first_lasting_shift(difference: np.ndarray, lo: int, hi: int, lookback: int) -> int | None:
    """The first composite in ``lo..hi`` from which a region leaves its usual difference from its neighbours.

    Where no year before is known, the unchanged ground of the region's old class around it is the
    comparison: before the change the region differs from it by a steady amount (the seasons are
    theirs too); from the change on, by more, for good. The steady amount is the median difference
    over the ``lookback`` composites before ``lo``; then as :func:`first_lasting_departure`.

    Args:
        difference: ``(composites, features)`` the region's median features minus its neighbours'.
        lo: First candidate composite.
        hi: Last candidate composite.
        lookback: Composites before ``lo`` that give the steady difference.

    Returns:
        The composite index, or None when nothing before ``lo`` was observed or nothing departs.
    """
    steady = difference[max(0, lo - lookback) : lo]
    if not np.isfinite(steady[:, 0]).any():
        return None
    norms = despiked(np.linalg.norm(difference - nan_median(steady), axis=1))
    usual = float(nan_median(norms[max(0, lo - lookback) : lo]))
    return _first_for_good(norms, lo, hi, usual, lambda c: norms[c:])


def _first_for_good(
    norms: np.ndarray, lo: int, hi: int, usual: float, since: Callable[[int], np.ndarray]
) -> int | None:
    """The first composite in ``lo..hi`` that departs for good; None when there is none.

    A composite departs above ``2 usual + 0.5``; for good when ``since(c)`` (the values from it
    on) never comes back to ``usual + 0.5`` or less for two observed composites in a row. It is
    dated at the middle of the unobserved gap before it (:func:`gap_middle`).
    """
    level, back_level = 2 * usual + 0.5, usual + 0.5
    for c in range(max(lo, 1), min(hi, norms.shape[0] - 1) + 1):
        if not norms[c] > level:  # NaN (unobserved) is no departure
            continue
        ahead = since(c)
        back = ahead[np.isfinite(ahead)] <= back_level
        if not np.any(back[1:] & back[:-1]):
            return gap_middle(norms, c, lo)
    return None


def lasting_break(
    series: np.ndarray,
    before: np.ndarray,
    per_year: int,
    lo: int,
    hi: int,
    lookback: int,
    landscape: np.ndarray | None = None,
) -> int:
    """The composite in ``lo..hi`` where an anomaly steps to a level it keeps.

    A two-level fit by least absolute deviations over the fixed span from ``lookback`` composites
    before ``lo`` to the series' end: the break minimizes the deviations of the values before it
    from their median plus those after it from theirs. Before a candidate, the anomaly is each
    composite against the year before it; from the candidate on, against the year before the
    candidate (:func:`against_the_year_before`), so a change early in the series stays an
    anomaly in its second year too. Medians and absolute deviations keep a
    snowy January or a missed cloud from deciding; a season that raises the anomaly for a while
    fits neither level well (short spikes are dropped first, :func:`despiked`), and a change in
    stages or a gradual one is dated near its middle. A break after unobserved composites is
    dated in the middle of that gap (:func:`gap_middle`).

    Args:
        series: ``(composites, features)`` the region's median scaled features.
        before: ``(per_year, features)`` the same for the year before the series (NaN: unknown).
        per_year: Composites per year.
        lo: First candidate composite (at least 1).
        hi: Last candidate composite.
        lookback: Composites before ``lo`` in the fitted span.
        landscape: As for :func:`year_on_year`.

    Returns:
        The composite index of the break (``lo`` when too little was observed on either side).
    """
    norms = despiked(np.linalg.norm(year_on_year(series, before, per_year, landscape), axis=1))
    start, best, best_cost = max(0, lo - lookback), lo, np.inf
    for c in range(max(lo, 1), min(hi, norms.shape[0] - 1) + 1):
        later = against_the_year_before(series, before, per_year, c, landscape)
        later = despiked(np.linalg.norm(later, axis=1))
        earlier, later = norms[start:c][np.isfinite(norms[start:c])], later[np.isfinite(later)]
        if earlier.size < BREAK_HALF or later.size < BREAK_HALF:
            continue
        cost = np.abs(earlier - np.median(earlier)).sum() + np.abs(later - np.median(later)).sum()
        if cost <= best_cost + 1e-9:  # the last of equals: the first observed composite after a gap
            best, best_cost = c, cost
    return gap_middle(norms, best, lo)


def year_on_year(
    series: np.ndarray, before: np.ndarray, per_year: int, landscape: np.ndarray | None = None
) -> np.ndarray:
    """Each composite minus the same composite one year earlier (NaN where either is unobserved).

    Args:
        series: ``(composites, features)`` over consecutive years.
        before: ``(per_year, features)`` the year before the series (NaN where unknown).
        per_year: Composites per year.
        landscape: ``(years, composites, features)`` the surrounding stable ground's anomaly of
            each composite against 1, 2, … years earlier
            (:func:`eo_tasks.maps.spectra.landscape_anomaly`), taken off where it explains part
            of the region's.
    """
    full = np.concatenate([before, series])
    anomaly = series - full[: series.shape[0]]
    return anomaly if landscape is None else _explained_away(anomaly, landscape[0])


def against_the_year_before(
    series: np.ndarray, before: np.ndarray, per_year: int, start: int, landscape: np.ndarray | None = None
) -> np.ndarray:
    """Each composite from ``start`` on minus the same composite in the year before ``start``.

    Unlike :func:`year_on_year`, a composite two years after ``start`` is compared with the year
    before ``start`` too, never with one after it: the anomaly of a lasting change stays up.

    Args:
        series: ``(composites, features)`` over consecutive years.
        before: ``(per_year, features)`` the year before the series (NaN where unknown).
        per_year: Composites per year.
        start: A composite index of the series (the break).
        landscape: As for :func:`year_on_year`.

    Returns:
        ``(composites - start, features)``.
    """
    full = np.concatenate([before, series])
    index = np.arange(start, series.shape[0])
    years_back = (index - start) // per_year + 1
    anomaly = series[start:] - full[index - years_back * per_year + per_year]
    return anomaly if landscape is None else _explained_away(anomaly, landscape[years_back - 1, index])


def _explained_away(anomaly: np.ndarray, landscape: np.ndarray) -> np.ndarray:
    """The anomaly less the landscape's, in each composite where that makes it smaller.

    The landscape only explains anomalies away; where subtracting it would make one larger (ground
    of the class around that itself changed unseen, or was mapped wrongly), the region's own stays.
    """
    less = anomaly - landscape
    smaller = np.linalg.norm(less, axis=-1) < np.linalg.norm(anomaly, axis=-1)
    return np.asarray(np.where(smaller[..., None], less, anomaly))


@dataclass(frozen=True)
class RegionEvidence:
    """What a change region's spectra say.

    Attributes:
        composite: The break (the region's change date as a composite index of the series).
        lasting: Median anomaly (feature-spread units) from the break to the series' end against
            the same season before the break; NaN where that season is unknown.
        anomaly_dated: Whether the break was found on the year-on-year anomaly or against the
            neighbours (else on the features).
    """

    composite: int
    lasting: float
    anomaly_dated: bool


def region_evidence(
    series: np.ndarray,
    before: np.ndarray,
    per_year: int,
    flip_end: int,
    window: int,
    use_anomaly: bool,
    landscape: np.ndarray | None = None,
    neighbours: np.ndarray | None = None,
    like_a_harvest: bool = False,
    field: bool = False,
    bounds: tuple[int, int] | None = None,
) -> RegionEvidence:
    """Dates one region and measures how lasting its change is.

    Args:
        series: ``(composites, features)`` the region's median scaled features over the series.
        before: ``(per_year, features)`` the same for the year before the series (NaN: unknown).
        per_year: Composites per year.
        flip_end: The last composite of the first window whose label flipped.
        window: ``w``.
        use_anomaly: Date on the year-on-year anomaly where it is known (``platform`` rules).
        landscape: The anomaly of the stable ground of the region's old class around it
            (:func:`landscape_anomaly`): a drought or snow year, taken off the region's.
        neighbours: ``(pixels, composites, features)`` that stable ground
            (:func:`eo_tasks.maps.spectra.reference_pixels`): where the window's year-on-year
            anomaly is unknown or cannot date the region (the series' first year, no year before),
            it is dated against the most similar of them (:func:`first_lasting_shift`).
        like_a_harvest: A field turned to ground a harvest looks like (bare soil, a building site):
            with no year before its features' break, the labels' own date stands.
        field: The region was cropland (its anomaly moves with each year's crop).
        bounds: The first and last composite the change may be dated at (open water's,
            :func:`~eo_tasks.maps.feature_breaks.open_water_bounds`); the date is moved inside.
    """
    lo, hi = flip_end - window + 1, flip_end
    anomaly = year_on_year(series, before, per_year, landscape)
    norms = np.linalg.norm(anomaly, axis=1)  # NaN where unobserved or unknown
    composite, anomaly_dated = lo, False
    if use_anomaly and int(np.isfinite(norms[lo : hi + 1]).sum()) >= BREAK_HALF:
        # half a window past the flip too: a leaf fall read as grass can flip the labels early
        departure = first_lasting_departure(
            series, before, per_year, lo, hi + window // 2, window, landscape, usual_in_window=not field
        )
        if departure is not None:
            composite = departure
        else:
            composite = lasting_break(series, before, per_year, lo, hi + window // 2, window, landscape)
        # a step up from the ground as it was; if the anomaly is high from its first known
        # composite, the change came before it was known: the features must date it
        level_before = float(nan_median(norms[max(0, lo - window) : composite]))
        anomaly_dated = bool(level_before < 0.5 * _lasting(series, before, per_year, composite, landscape))
    if use_anomaly and not anomaly_dated and neighbours is not None:
        similar = similar_neighbours(neighbours, series, slice(max(0, lo - window), lo))
        shift = (
            None if similar is None else first_lasting_shift(series - similar, lo, hi + window // 2, window)
        )
        if shift is not None:
            composite, anomaly_dated = shift, True
    if not anomaly_dated:
        composite = break_composite(series, lo, hi)
        if use_anomaly:
            composite = first_stage(series, composite, lo)
        unknown_year_earlier = composite < per_year and not np.isfinite(before).any()
        if use_anomaly and (
            seasonal_jump(series, before, per_year, composite) or (like_a_harvest and unknown_year_earlier)
        ):
            composite = flip_end - window // 2  # the labels' own date (the half-window rule's)
    if bounds is not None:
        composite = min(max(composite, bounds[0]), bounds[1])
    lasting = _lasting(series, before, per_year, composite, landscape)
    return RegionEvidence(composite, lasting, anomaly_dated)


def _lasting(
    series: np.ndarray, before: np.ndarray, per_year: int, start: int, landscape: np.ndarray | None
) -> float:
    """The median anomaly from ``start`` to the series' end, against the year before ``start``."""
    anomaly = against_the_year_before(series, before, per_year, start, landscape)
    return float(nan_median(np.linalg.norm(anomaly, axis=1)))
