"""The second year confirms the previous year's changes, or withdraws them (``rules: platform``).

A change found in year ``Y − 1`` has one year of evidence at most, often a few months: a meadow
ploughed in October looks like a new field until spring. Year ``Y``'s run sees what followed. A
change whose pixels ``Y``'s labels turn back to the class before it, within a year of its date
(:func:`reverted_changes`), is

- **withdrawn** when the ground looks again as it did before the change (:func:`ground_returned`):
  the maps pipeline rejects it in the store as the reviewer ``second-year check``, so the map of
  ``Y − 1`` loses it and ``Y`` is analysed on that map (no change back is recorded);
- **kept** when the ground still differs (rock left by a glacier that the labels call snow again
  in winter): then the turn back is the labels' error and is dropped from ``Y``.

Reviewed changes are never touched: a person's decision stands.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from eo_tasks.core.cube import Cube
from eo_tasks.core.stats import nan_median
from eo_tasks.maps.annual_maps import EPOCH, YearResult
from eo_tasks.maps.dating import MIN_LASTING_ANOMALY, against_the_year_before
from eo_tasks.maps.spectra import region_series_and_before

MIN_REVERTED_SHARE = 0.5  # of a change's pixels the next year turns back, for it to be withdrawn
DAYS_TO_CONFIRM = 366  # a year (leap day included): a turn back later than this is a change of its own


@dataclass(frozen=True)
class LastChanges:
    """The previous year's unreviewed changes, as the previous map holds them.

    Attributes:
        regions: ``(rows, cols)`` change number 1..n where the previous map holds its new class, 0
            elsewhere.
        from_class: ``(rows, cols)`` the class before each change.
        days: ``(rows, cols)`` each change's date, days since 1970-01-01.
    """

    regions: np.ndarray
    from_class: np.ndarray
    days: np.ndarray

    @classmethod
    def from_result(cls, result: YearResult) -> LastChanges:
        """Every change of a year's result, one per connected region of the same classes and date."""
        from scipy import ndimage

        keys = np.where(
            result.changed & (result.classes == result.to_class),
            (result.change_days.astype(np.int64) << 16)
            | (result.from_class.astype(np.int64) << 8)
            | result.to_class,
            -1,
        )
        regions, offset = np.zeros(keys.shape, np.int32), 0
        for key in np.unique(keys[keys >= 0]):
            labels, n = ndimage.label(keys == key, structure=np.ones((3, 3), bool))
            regions = np.where(labels > 0, labels + offset, regions)
            offset += n
        return cls(regions, result.from_class, result.change_days)


def reverted_changes(last: LastChanges, result: YearResult) -> list[int]:
    """The previous year's changes this year's analysis turns back: no second year confirms them.

    A change is turned back when at least :data:`MIN_REVERTED_SHARE` of its pixels change again, to
    the class they had before it, at most :data:`DAYS_TO_CONFIRM` days after its date.

    Args:
        last: The previous year's unreviewed changes.
        result: This year's result, computed on the previous map as stored.

    Returns:
        Their numbers in ``last.regions``, ascending.
    """
    back = (
        result.changed
        & (result.to_class == last.from_class)
        & (result.change_days.astype(np.int64) - last.days <= DAYS_TO_CONFIRM)
    )
    numbers = np.arange(1, int(last.regions.max(initial=0)) + 1)
    if numbers.size == 0:
        return []
    pixels = np.bincount(last.regions.ravel(), minlength=numbers.size + 1)[1:]
    turned = np.bincount(last.regions[back].ravel(), minlength=numbers.size + 1)[1:]
    return [int(n) for n in numbers[(pixels > 0) & (turned >= MIN_REVERTED_SHARE * np.maximum(pixels, 1))]]


def withdrawn(previous: np.ndarray, last: LastChanges, numbers: Sequence[int]) -> np.ndarray:
    """The previous map without the given changes: their pixels hold the class before them again."""
    where = np.isin(last.regions, numbers)
    return np.where(where, last.from_class, previous).astype(previous.dtype)


def ground_returned(
    cubes: Sequence[Cube],
    year_before: Cube | None,
    where: np.ndarray,
    changed_at: int,
    returned_at: int,
    scale: np.ndarray,
    include_indices: bool,
) -> bool:
    """Whether a changed region's ground looks again as it did before the change.

    The region's anomaly from ``returned_at`` on, against the year before ``changed_at``, has a
    median under :data:`MIN_LASTING_ANOMALY`: a ploughed meadow green again. Rock left by a
    glacier that the labels call snow again in winter keeps its anomaly against the ice.

    Args:
        cubes: The cubes of the series, oldest first.
        year_before: The cube of the year before them (NaN anomalies without it).
        where: ``(rows, cols)`` the region's pixels.
        changed_at: The change's composite in the series (the year before it must be known).
        returned_at: The composite the labels turned back at.
        scale: Per-feature scale (the model card's normalization std).
        include_indices: Whether the features include the spectral indices.

    Returns:
        False when the ground still differs, or when that is unknown.
    """
    from scipy import ndimage

    box = ndimage.find_objects(where.astype(np.int32))[0]
    if box is None or changed_at < 0 or returned_at < changed_at:
        return False
    series, before = region_series_and_before(cubes, year_before, box, where[box], scale, include_indices)
    per_year = cubes[-1].shape[0]
    anomaly = against_the_year_before(series, before, per_year, changed_at)[returned_at - changed_at :]
    return bool(nan_median(np.linalg.norm(anomaly, axis=1)) < MIN_LASTING_ANOMALY)


def second_year_check(
    last: LastChanges,
    result: YearResult,
    cubes: Sequence[Cube],
    year_before: Cube | None,
    scale: np.ndarray,
    include_indices: bool,
) -> tuple[list[int], np.ndarray]:
    """Which of the previous year's changes to withdraw, and which turn backs are the labels' error.

    Args:
        last: The previous year's unreviewed changes.
        result: This year's result, computed on the previous map as stored.
        cubes: The cubes of this year's series, oldest first.
        year_before: The cube of the year before them.
        scale: Per-feature scale (the model card's normalization std).
        include_indices: Whether the features include the spectral indices.

    Returns:
        The numbers (in ``last.regions``) of the changes to withdraw, and ``(rows, cols)`` the
        pixels of the kept changes whose turn back this year must drop.
    """
    days = np.array([(d - EPOCH).days for cube in cubes for d in cube.dates])
    withdraw, mistaken = [], np.zeros(last.regions.shape, bool)
    for number in reverted_changes(last, result):
        where = last.regions == number
        changed_at = int(np.searchsorted(days, int(np.median(last.days[where])), side="right")) - 1
        returned = where & result.changed
        returned_at = int(np.median(result.change_composite[returned]))
        if ground_returned(cubes, year_before, where, changed_at, returned_at, scale, include_indices):
            withdraw.append(number)
        else:
            mistaken |= where
    return withdraw, mistaken
