"""Changes the classifier cannot see: the ground changed for good, the labels did not flip.

A classifier trained on the reference map's classes labels a surface it never saw as the nearest
one it knows: a burnt forest, black char and then sparse shoots, stays "tree cover" at 99 %
confidence in every window (measured on the accuracy suite). The label-sequence analysis then has
nothing to find. The spectra do show it: from the day of the fire, every composite differs from
the same composite a year earlier, and keeps differing to the end of the series.

``platform`` rules add such pixels as change candidates: in the map year, the year-on-year anomaly
rises at a break and stays above :data:`~eo_tasks.maps.lasting_breaks.LASTING_ANOMALY` on at least
70 % of the observed composites after it (four of them at least), after staying below
:data:`~eo_tasks.maps.lasting_breaks.QUIET_ANOMALY` before it (:mod:`eo_tasks.maps.lasting_breaks`).
Cropland is left out: a new crop every year is exactly such an anomaly. Their new class comes from
the spectra (:func:`spectral_class`: water, bare ground, or grassland where trees lost their canopy
but the ground stays green), since the classifier has none, and must differ from the old one; the
candidates then pass the same region-size filter, dating and lasting-anomaly check as the label
flips (``eo_tasks.maps.dating``).

Open water needs no anomaly threshold: ground that is open water (NDWI over 0, no snow) on 70 % of
the observed composites from a break on, after dry ground on 70 % of those before it (this year's
and the previous year's), is water whatever its old class
(:func:`~eo_tasks.maps.lasting_breaks.lasting_open_water`). Fields included: no crop looks like open
water, so a rotation does not matter; a seasonal flood recedes before the series ends.

A change late in the previous year falls between two runs: too few composites followed it for
that year's run, and this year's anomaly is high from its first composite, with no quiet time
before. Where the year before the previous one is known, its changes are looked for again
(:func:`~eo_tasks.maps.lasting_breaks.previous_year_breaks`): quiet in the previous year's anomaly
before the break, high after it, each composite against the year before the break. Pixels the
previous map already changed that year are left out (``settled``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from eo_tasks.core.classes import CLASS_BY_NAME, NODATA_CLASS
from eo_tasks.core.cube import Cube
from eo_tasks.core.features import cube_grid
from eo_tasks.core.grid import Block, blocks
from eo_tasks.core.indices import spectral_indices
from eo_tasks.core.stats import nan_median
from eo_tasks.maps.annual_maps import YearResult
from eo_tasks.maps.changes import drop_small_regions
from eo_tasks.maps.lasting_breaks import (
    LASTING_ANOMALY,
    QUIET_ANOMALY,
    counts_before,
    counts_from,
    indices_with_nir,
    is_snow,
    lasting_open_water,
    previous_year_breaks,
    sharpest_break,
)
from eo_tasks.maps.spectra import observed_features

NOT_CHECKED = (CLASS_BY_NAME["cropland"].code, NODATA_CLASS)
WATER = CLASS_BY_NAME["water"].code
NOT_NEW_WATER = (WATER, CLASS_BY_NAME["wetland"].code, NODATA_CLASS)  # wetlands flood every year
TREE_COVER, GRASSLAND = CLASS_BY_NAME["tree_cover"].code, CLASS_BY_NAME["grassland"].code
CANOPY_LOSS_NDVI = 0.1  # lower NDVI than a year earlier: trees that lost their canopy
MIN_TREES = 50  # other trees in a block that give the landscape's own NDVI loss


def spectral_class(
    ndvi: np.ndarray,
    ndwi: np.ndarray,
    snow: np.ndarray,
    old: np.ndarray,
    canopy_loss: np.ndarray,
) -> np.ndarray:
    """A class for ground the classifier never saw, from its median indices after the change.

    Snow (:func:`~eo_tasks.maps.lasting_breaks.is_snow`) gets none: it comes and goes with the
    seasons, and snow is bright in green, so it would pass for water below. Water where NDWI is
    positive; bare ground where NDVI stays under 0.3 (char, soil, rock). Tree cover that stays green but lost
    :data:`CANOPY_LOSS_NDVI` or more of its NDVI against the same composites a year earlier is
    grassland: a storm-felled or cut stand grows grass and herbs first. 0 (no class: not reported)
    otherwise.

    Args:
        ndvi: Median NDVI after the break.
        ndwi: Median NDWI after the break.
        snow: Whether the median NDSI and near infrared after the break are snow's.
        old: The class before the change.
        canopy_loss: NDVI lost since the same composites a year earlier, beyond what the other
            trees lost (:func:`_canopy_loss`; NaN: unknown).
    """
    bare = CLASS_BY_NAME["bare"].code
    felled = (old == TREE_COVER) & (canopy_loss >= CANOPY_LOSS_NDVI)  # NaN compares False
    vegetated = np.where(felled, GRASSLAND, 0)
    return np.where(snow, 0, np.where(ndwi > 0.0, WATER, np.where(ndvi < 0.3, bare, vegetated))).astype(
        np.uint8
    )


def _block_candidates(
    cubes: Sequence[Cube],
    block: Block,
    scale: np.ndarray,
    include_indices: bool,
    initial: np.ndarray,
    year_before: Cube | None,
    settled: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One block: ``(candidate, break composite, spectral class)`` per pixel, each ``(rows, cols)``."""
    rows, cols = slice(block.row0, block.row0 + block.rows), slice(block.col0, block.col0 + block.cols)
    (ref_before, valid_before), (ref_year, valid_year) = (cube.read(rows, cols) for cube in cubes[-2:])
    per_year, shape = ref_year.shape[0], (block.rows, block.cols)
    names = cubes[0].band_names

    def features(reflectance: np.ndarray, valid: np.ndarray) -> np.ndarray:
        pixels, seen = reflectance.reshape(per_year, -1, len(names)), valid.reshape(per_year, -1)
        return observed_features(pixels, seen, names, scale, include_indices)

    year, before = features(ref_year, valid_year), features(ref_before, valid_before)
    norms = np.linalg.norm(year - before, axis=2)  # (pixels, composites); NaN where either unobserved
    checked = ~np.isin(initial.ravel(), NOT_CHECKED)
    seen = np.isfinite(norms)
    found, start = sharpest_break(
        counts_before(seen),
        counts_before(norms < QUIET_ANOMALY),
        counts_from(seen),
        counts_from(norms >= LASTING_ANOMALY),
        seen,
        checked,
    )
    from_break = np.arange(per_year)[:, None] >= start[None, :]
    indices = indices_with_nir(ref_year.reshape(per_year, -1, len(names)), names)
    old_indices = indices_with_nir(ref_before.reshape(per_year, -1, len(names)), names)
    observed = valid_year.reshape(per_year, -1) > 0
    ndvi_now = np.where(observed, indices["ndvi"], np.nan)
    ndvi_before = np.where(valid_before.reshape(per_year, -1) > 0, old_indices["ndvi"], np.nan)
    trees = (initial.ravel() == TREE_COVER) & ~found
    loss = _canopy_loss(ndvi_now, ndvi_before, from_break, trees)
    loss[per_year - start < per_year // 2] = np.nan  # half a year at least: not an early leaf fall
    to_class = spectral_class(*_medians_after(indices, from_break & observed), initial.ravel(), loss)
    found &= (to_class != 0) & (to_class != initial.ravel())
    composite = start + per_year
    water, water_start = lasting_open_water(old_indices, valid_before, indices, observed)
    water &= ~found & ~np.isin(initial.ravel(), NOT_NEW_WATER)
    found, composite = found | water, np.where(water, water_start, composite)
    to_class = np.where(water, WATER, to_class)
    if year_before is not None:  # the previous year's changes its run missed: all of this year is after them
        ref_two, valid_two = year_before.read(rows, cols)
        open_ = checked & ~found & ~settled.ravel()
        late, late_start = previous_year_breaks(features(ref_two, valid_two), before, year, open_)
        ndvi_two = spectral_indices(ref_two.reshape(per_year, -1, len(names)), names)["ndvi"]
        ndvi_two = np.where(valid_two.reshape(per_year, -1) > 0, ndvi_two, np.nan)
        trees = (initial.ravel() == TREE_COVER) & ~found & ~late
        loss = _canopy_loss(ndvi_now, ndvi_two, np.ones_like(from_break), trees)
        late_class = spectral_class(*_medians_after(indices, observed), initial.ravel(), loss)
        late &= (late_class != 0) & (late_class != initial.ravel())
        found, composite = found | late, np.where(late, late_start, composite)
        to_class = np.where(late, late_class, to_class)
    return found.reshape(shape), composite.reshape(shape), to_class.reshape(shape)


def _medians_after(
    indices: dict[str, np.ndarray], after: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(ndvi, ndwi, snow)`` of :func:`spectral_class`: median indices over the composites ``after``."""
    ndvi, ndwi, ndsi, nir = (
        nan_median(np.where(after, indices[k], np.nan)) for k in ("ndvi", "ndwi", "ndsi", "nir")
    )
    return ndvi, ndwi, is_snow(ndsi, nir)


def _canopy_loss(
    ndvi: np.ndarray,
    ndvi_before: np.ndarray,
    from_break: np.ndarray,
    trees: np.ndarray,
) -> np.ndarray:
    """Per pixel, how much NDVI it lost since the same composites a year earlier, beyond the trees'.

    Where the year before is known in both years' composites from the pixel's break on: the median
    of (NDVI a year earlier − NDVI now), less what the block's other trees lost in that composite
    (a drought or a snow year takes NDVI from every stand); NaN where nothing is known.

    Args:
        ndvi: ``(per_year, pixels)`` NDVI of the map year, NaN where unobserved.
        ndvi_before: The same of the year compared with.
        from_break: ``(per_year, pixels)`` composites from each pixel's break on.
        trees: ``(pixels,)`` the block's other trees (tree cover, no candidate).
    """
    per_year = ndvi.shape[0]
    lost = ndvi_before - ndvi  # NaN where either year is unobserved
    landscape = np.zeros(per_year, np.float32)
    if trees.sum() >= MIN_TREES:
        landscape = np.nan_to_num(nan_median(lost[:, trees].T))  # 0 where no tree was seen twice
    return nan_median(np.where(from_break, lost - landscape[:, None], np.nan))


def lasting_anomaly_candidates(
    cubes: Sequence[Cube],
    scale: np.ndarray,
    include_indices: bool,
    initial: np.ndarray,
    block_px: int = 128,
    year_before: Cube | None = None,
    settled: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixels whose ground changed for good in the map year, by their year-on-year anomaly alone.

    With ``year_before``, also the previous year's changes that its run missed.

    Args:
        cubes: The cubes of the previous year and the map year (oldest first).
        scale: Per-feature scale (the model card's normalization std).
        include_indices: Whether the features include the spectral indices.
        initial: ``(rows, cols)`` the previous map (the classes the changes start from).
        block_px: Side of the blocks read at a time.
        year_before: The cube of the year before the previous one.
        settled: ``(rows, cols)`` where the previous map holds a change of the previous year
            (not looked for again).

    Returns:
        ``(candidate, composite, to_class)``, each ``(rows, cols)``: the candidates, their break as a
        composite index of the two-year series, and their spectral class.
    """
    candidate = np.zeros(initial.shape, bool)
    composite = np.full(initial.shape, -1, np.int32)
    to_class = initial.astype(np.uint8).copy()
    settled = np.zeros(initial.shape, bool) if settled is None else settled
    for block in blocks(cube_grid(cubes[-1]), block_px):
        where = slice(block.row0, block.row0 + block.rows), slice(block.col0, block.col0 + block.cols)
        found, start, new_class = _block_candidates(
            cubes, block, scale, include_indices, initial[where], year_before, settled[where]
        )
        candidate[where] = found
        composite[where] = np.where(found, start, -1)
        to_class[where] = np.where(found, new_class, to_class[where])
    return candidate, composite, to_class


def add_spectral_changes(
    result: YearResult,
    cubes: Sequence[Cube],
    scale: np.ndarray,
    include_indices: bool,
    ath: int,
    year_before: Cube | None = None,
    settled: np.ndarray | None = None,
) -> YearResult:
    """The year's result with the lasting-anomaly candidates the labels missed (regions ≥ ``ath`` px).

    Args:
        result: The label-sequence analysis' result (:func:`eo_tasks.maps.annual_maps.next_year_map`).
        cubes: The cubes of the previous year and the map year.
        scale: Per-feature scale (the model card's normalization std).
        include_indices: Whether the features include the spectral indices.
        ath: Smallest region kept.
        year_before: The cube of the year before the previous one (the previous year's changes
            are looked for again).
        settled: ``(rows, cols)`` where the previous map holds a change of the previous year.
    """
    found, composite, to_class = lasting_anomaly_candidates(
        cubes, scale, include_indices, result.from_class, year_before=year_before, settled=settled
    )
    new = drop_small_regions(found & ~result.changed, ath)
    return YearResult(
        classes=np.where(new, to_class, result.classes).astype(np.uint8),
        changed=result.changed | new,
        from_class=result.from_class,
        to_class=np.where(new, to_class, result.to_class).astype(np.uint8),
        change_days=result.change_days,
        change_composite=np.where(new, composite, result.change_composite).astype(np.int32),
    )
