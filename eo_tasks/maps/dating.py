"""Dating change regions, and checking them against the ground's own spectra.

The window labels only say that a change happened within the first window whose label flipped;
the spectral series of the changed region says where inside that window. Two series can be
searched for the break:

- the region's median features (the published refinement): the largest jump inside the window.
  Seasons jump too (green-up, leaf fall, snow), and a change in stages (fields stripped to soil,
  then built on) has its largest jump at the second stage, months after the change began;
- the region's **year-on-year anomaly** (``platform`` rules): each composite minus the same
  composite of the year before. Seasons cancel. The date is the first composite that leaves the
  ground's usual variation for good (:func:`first_lasting_departure`), else a two-level fit
  (:func:`lasting_break`); the features' break remains where no year before is known.
  The anomaly of the stable ground of the region's old class around it (:func:`landscape_anomaly`)
  is taken off first: a drought, a wet spring or a snow year moves all of that ground alike, and
  is neither the date nor the evidence of a change.

The same anomaly checks the region: a permanent change keeps it up to the end of the series
(:func:`region_evidence`'s ``lasting``), while a label flip the ground never made (a winter
confusion between shrubs and trees, a drought or snow year) leaves it low or lets it fall back.
All thresholds are in units of the features' spread (the model card's normalization std) and were
chosen on the accuracy suite (README, *Accuracy on landscapes it was not tuned on*).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from eo_tasks.core.aoi_sections import ChangeParams
from eo_tasks.core.cube import Cube
from eo_tasks.maps.annual_maps import YearResult, changed_days, without
from eo_tasks.maps.spectra import landscape_anomaly, region_series

BREAK_HALF = 2  # composites on each side of a candidate break
# A region's anomaly after its break below which the ground shows no lasting change.
MIN_LASTING_ANOMALY = 0.5


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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: unobserved composites
        for c in range(max(lo, 1), min(hi, series.shape[0] - 1) + 1):
            jump = float(
                np.linalg.norm(
                    np.nanmedian(series[c : c + half], 0) - np.nanmedian(series[max(0, c - half) : c], 0)
                )
            )
            if jump > best_jump:  # NaN compares False: skipped
                best, best_jump = c, jump
    return best


def nanmedian(values: np.ndarray) -> float:
    """The median of the finite values; NaN when there are none."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: unobserved or unknown
        return float(np.nanmedian(values)) if np.isfinite(values).any() else float("nan")


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
) -> int | None:
    """The first composite in ``lo..hi`` from which the anomaly leaves the ground's usual variation.

    The ground's usual variation is measured on the ``lookback`` composites before ``lo`` (their
    median year-on-year anomaly ``L``; a composite departs above ``2 L + 0.5``); one observed
    composite among them is enough (a cloudy, Landsat-only autumn may leave no more). The change is the
    first departing composite after which the anomaly, against the year before it, never comes
    back (to ``L + 0.5`` or less) for two observed composites in a row: a snowy January departs
    and comes back, a fire departs for good even though black ground differs less from a
    leafless forest in winter.

    Returns:
        The composite index, or None when no composite before ``lo`` was observed (or its year
        before) or nothing departs.
    """
    norms = despiked(np.linalg.norm(year_on_year(series, before, per_year, landscape), axis=1))
    usual = norms[max(0, lo - lookback) : lo]
    if not np.isfinite(usual).any():
        return None
    level, back_level = 2 * nanmedian(usual) + 0.5, nanmedian(usual) + 0.5
    for c in range(max(lo, 1), min(hi, norms.shape[0] - 1) + 1):
        if not norms[c] > level:  # NaN (unobserved) is no departure
            continue
        ahead = np.linalg.norm(against_the_year_before(series, before, per_year, c, landscape), axis=1)
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
        anomaly_dated: Whether the break was found on the year-on-year anomaly (else on the features).
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
    """
    lo, hi = flip_end - window + 1, flip_end
    anomaly = year_on_year(series, before, per_year, landscape)
    norms = np.linalg.norm(anomaly, axis=1)  # NaN where unobserved or unknown
    composite, anomaly_dated = lo, False
    if use_anomaly and int(np.isfinite(norms[lo : hi + 1]).sum()) >= BREAK_HALF:
        # half a window past the flip too: a leaf fall read as grass can flip the labels early
        departure = first_lasting_departure(series, before, per_year, lo, hi + window // 2, window, landscape)
        if departure is not None:
            composite = departure
        else:
            composite = lasting_break(series, before, per_year, lo, hi + window // 2, window, landscape)
        # a step up from the ground as it was; if the anomaly is high from its first known
        # composite, the change came before it was known: the features must date it
        level_before = nanmedian(norms[max(0, lo - window) : composite])
        anomaly_dated = bool(level_before < 0.5 * _lasting(series, before, per_year, composite, landscape))
    if not anomaly_dated:
        composite = break_composite(series, lo, hi)
    lasting = _lasting(series, before, per_year, composite, landscape)
    return RegionEvidence(composite, lasting, anomaly_dated)


def _lasting(
    series: np.ndarray, before: np.ndarray, per_year: int, start: int, landscape: np.ndarray | None
) -> float:
    """The median anomaly from ``start`` to the series' end, against the year before ``start``."""
    anomaly = against_the_year_before(series, before, per_year, start, landscape)
    return nanmedian(np.linalg.norm(anomaly, axis=1))


def dating_regions(result: YearResult, date_bin: int) -> np.ndarray:
    """Connected change regions to date one by one (labels 1..n, 0 elsewhere).

    With ``date_bin`` > 0 (platform rules), a region is also split where the labels' dates fall
    in different bins of ``date_bin // 2`` composites: a fire in August next to a quarry opened in
    November are two events, and one median series of both would date neither.
    """
    from scipy import ndimage

    eight = np.ones((3, 3), dtype=bool)
    if date_bin <= 0:
        return np.asarray(ndimage.label(result.changed, structure=eight)[0])
    bins = np.where(result.changed, result.change_composite // max(date_bin // 2, 1), -1)
    regions, offset = np.zeros(bins.shape, np.int32), 0
    for value in np.unique(bins[bins >= 0]):
        labels, n = ndimage.label(bins == value, structure=eight)
        regions = np.where(labels > 0, labels + offset, regions)
        offset += n
    return regions


def refine_dates(
    result: YearResult,
    cubes: Sequence[Cube],
    scale: np.ndarray,
    include_indices: bool,
    params: ChangeParams,
    year_before: Cube | None = None,
) -> tuple[YearResult, list[RegionEvidence]]:
    """Dates each change region at its spectral break; with ``platform`` rules, drops passing flips.

    Published rules: the break of the region's median features inside its first flipped window
    (ending ``window // 2`` after the half-window rule's date). Platform rules: the break of the
    year-on-year anomaly where the year before is known (``year_before`` supplies it for the
    series' first year), and a region whose anomaly does not stay at least
    :data:`MIN_LASTING_ANOMALY` after its break is no change (its pixels keep the previous map).

    Args:
        result: The year's result from :func:`eo_tasks.maps.annual_maps.next_year_map`.
        cubes: The cubes the windows slid over, oldest first.
        scale: Per-feature scale (the model card's normalization std).
        include_indices: Whether the features include the spectral indices.
        params: The analysis settings (``window``, ``rules``).
        year_before: The cube of the year before ``cubes``, if there is one.

    Returns:
        The result with refined dates (and, with platform rules, without passing flips), and
        the evidence of every region found.
    """
    from scipy import ndimage

    platform = params.rules == "platform"
    window, per_year = params.window, cubes[-1].shape[0]
    regions = dating_regions(result, window if platform else 0)
    composite = result.change_composite.copy()
    changed = result.changed.copy()
    evidence = []
    for index, box in enumerate(ndimage.find_objects(regions), 1):
        if box is None:
            continue
        where = regions[box] == index
        series = region_series(cubes, box, where, scale, include_indices)
        n_features = series.shape[1]
        if year_before is not None:
            before = region_series([year_before], box, where, scale, include_indices)
        else:
            before = np.full((per_year, n_features), np.nan, np.float32)
        flip_end = int(np.median(result.change_composite[box][where])) + window // 2
        landscape = None
        if platform:
            old_class = np.bincount(result.from_class[box][where].astype(np.int64)).argmax()
            stable = ~result.changed & (result.from_class == old_class)
            landscape = landscape_anomaly(cubes, year_before, box, stable, scale, include_indices)
        found = region_evidence(series, before, per_year, flip_end, window, platform, landscape)
        evidence.append(found)
        composite[box][where] = found.composite
        if platform and found.lasting < MIN_LASTING_ANOMALY:  # NaN (unknown) compares False: kept
            changed[box][where] = False
    dates = [d for cube in cubes for d in cube.dates]
    dated = replace(
        result, change_composite=composite, change_days=changed_days(composite, result.changed, dates)
    )
    return without(dated, result.changed & ~changed), evidence
