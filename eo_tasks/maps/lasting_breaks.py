"""Per pixel, where its ground turns from as it was to changed for good: the candidates' breaks.

:mod:`eo_tasks.maps.spectral_changes` finds ground that changed while the labels did not flip. Its
break searches are here, on counts per pixel and composite: how many observed composites before a
candidate break were quiet, how many from it on were high (:func:`sharpest_break`), for the map
year's anomaly, for the previous year's late changes (:func:`previous_year_breaks`) and for open
water that appears and stays (:func:`lasting_open_water`); and the snow test that tells snow from
water (:func:`is_snow`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from eo_tasks.core.indices import spectral_indices

LASTING_ANOMALY = 1.5  # feature-spread units: well above a stable pixel's year-to-year noise
QUIET_ANOMALY = 1.0
MIN_OBSERVED_AFTER = 4
SHARE = 0.7  # of the observed composites after (before) the break that must be high (quiet)
SNOW_NDSI, SNOW_NIR = 0.4, 0.11  # snow (MODIS): NDSI and near-infrared reflectance above these


def is_snow(ndsi: np.ndarray, nir: np.ndarray) -> np.ndarray:
    """Snow as MODIS maps it: NDSI over 0.4 and near-infrared reflectance over 0.11.

    Open water has a high NDSI too (it is dark in the short-wave infrared), but not the near
    infrared's brightness.
    """
    return np.asarray((ndsi > SNOW_NDSI) & (nir > SNOW_NIR))


def indices_with_nir(
    reflectance: np.ndarray, names: Sequence[str], nir_band: str = "nir"
) -> dict[str, np.ndarray]:
    """:func:`~eo_tasks.core.indices.spectral_indices` and the near-infrared reflectance (``nir``).

    Both on ``nir_band`` where there is one of that name, else on the other near infrared
    (``nir`` or ``nir08``).
    """
    band = nir_band if nir_band in names else ("nir08" if "nir08" in names else "nir")
    nir = reflectance[..., list(names).index(band)]
    return {**spectral_indices(reflectance, names, nir_band=band), "nir": nir.astype(np.float32)}


def lasting_open_water(
    old: dict[str, np.ndarray], valid_old: np.ndarray, now: dict[str, np.ndarray], observed: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(found, break)`` per pixel: where open water appeared in the map year and stayed.

    Args:
        old: The previous year's indices and near infrared (:func:`indices_with_nir`),
            ``(per_year, pixels)`` each.
        valid_old: ``(per_year, rows, cols)`` whether the previous year observed a pixel.
        now: The same for the map year.
        observed: ``(per_year, pixels)`` whether the map year observed a pixel.

    Returns:
        Whether water appeared for good, and when: the middle of the unobserved composites before
        its first wet one, as a composite of the two years.
    """
    per_year = observed.shape[0]
    seen_old = valid_old.reshape(per_year, -1) > 0

    def wet(indices: dict[str, np.ndarray], seen: np.ndarray) -> np.ndarray:
        return seen & (indices["ndwi"] > 0.0) & ~is_snow(indices["ndsi"], indices["nir"])

    seen = np.concatenate([seen_old, observed]).T  # (pixels, two years of composites)
    water = np.concatenate([wet(old, seen_old), wet(now, observed)]).T
    # the last observed composite before each one was dry: water that was already there is no break
    index = np.arange(seen.shape[1])
    last_seen = np.maximum.accumulate(np.where(seen, index, -1), axis=1)
    last_before = np.concatenate([np.full((seen.shape[0], 1), -1), last_seen[:, :-1]], axis=1)
    dry_before = (last_before >= 0) & ~np.take_along_axis(water, np.maximum(last_before, 0), axis=1)
    year = slice(per_year, None)  # breaks in the map year
    before_seen, before_dry = counts_before(seen)[:, year], counts_before(seen & ~water)[:, year]
    after_seen, after_wet = counts_from(seen)[:, year], counts_from(water)[:, year]
    begins = (water & dry_before)[:, year]
    found, start = sharpest_break(
        before_seen, before_dry, after_seen, after_wet, begins, np.ones(seen.shape[0], bool)
    )
    # it appeared in the unobserved gap before its first wet composite: the gap's middle
    first_wet = start + per_year
    gap_start = np.take_along_axis(last_before, first_wet[:, None], axis=1)[:, 0] + 1
    return found, (gap_start + first_wet) // 2


def sharpest_break(
    before_seen: np.ndarray,
    before_quiet: np.ndarray,
    after_seen: np.ndarray,
    after_high: np.ndarray,
    candidate: np.ndarray,
    checked: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """``(found, break)`` per pixel: the composite where the ground turns from as it was to changed.

    Every argument but ``checked`` is ``(pixels, composites)``: counts of observed composites
    before and from each composite on, and of those that were quiet (before) or high (after). A
    break qualifies where ``candidate`` holds, at least :data:`SHARE` of the (two or more) observed
    composites before it were quiet and that share of the (:data:`MIN_OBSERVED_AFTER` or more)
    observed from it on high; of those, the sharpest contrast is the break.

    Args:
        before_seen: Observed composites before each composite.
        before_quiet: Of those, the quiet ones.
        after_seen: Observed composites from each composite to the end.
        after_high: Of those, the high ones.
        candidate: Where a break may be (observed, at least).
        checked: ``(pixels,)`` where a break may be found.
    """
    ok = (
        candidate
        & (after_seen >= MIN_OBSERVED_AFTER)
        & (after_high >= SHARE * after_seen)
        & (before_seen >= 2)
        & (before_quiet >= SHARE * before_seen)
    )
    with np.errstate(invalid="ignore", divide="ignore"):  # composites with nothing seen after or before
        contrast = after_high / after_seen + before_quiet / before_seen
    start = np.argmax(np.where(ok, contrast, -1.0), axis=1)  # the sharpest qualifying break
    return ok.any(axis=1) & checked, start


def counts_before(flags: np.ndarray) -> np.ndarray:
    """Per pixel, how many of the composites before each composite are True (prefix sums)."""
    return np.cumsum(flags, axis=1) - flags


def counts_from(flags: np.ndarray) -> np.ndarray:
    """Per pixel, how many of the composites from each composite to the end are True (suffix sums)."""
    return np.cumsum(flags[:, ::-1], axis=1)[:, ::-1]


def previous_year_breaks(
    two_back: np.ndarray, last: np.ndarray, year: np.ndarray, open_: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(found, break)``: breaks in the previous year, as composite indices of that year.

    Before a break, the previous year's anomaly against the year before it; from the break on,
    each composite against the year before the break: the rest of the previous year and this
    year's composites from the break's anniversary on against the year before the previous one,
    this year's composites before the anniversary against the previous year (unchanged then).
    The previous year's own composites after the break must mostly be high too: a change of this
    year (a glacier melting out in July) is not moved into the previous year's last composites.

    Args:
        two_back: ``(pixels, composites, features)`` the year before the previous one.
        last: The same, the previous year.
        year: The same, the map year.
        open_: ``(pixels,)`` where a break may be found.
    """
    last_year = np.linalg.norm(last - two_back, axis=2)
    this_year = np.linalg.norm(year - last, axis=2)
    since_two = np.linalg.norm(year - two_back, axis=2)

    def after(flag: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        return counts_from(flag(last_year)) + counts_before(flag(this_year)) + counts_from(flag(since_two))

    seen = np.isfinite(last_year)
    seen_then, high_then = counts_from(seen), counts_from(last_year >= LASTING_ANOMALY)
    changed_then = seen & (high_then >= SHARE * seen_then)  # a change of the previous year
    quiet = counts_before(last_year < QUIET_ANOMALY)
    high = after(lambda a: a >= LASTING_ANOMALY)
    return sharpest_break(counts_before(seen), quiet, after(np.isfinite), high, changed_then, open_)
