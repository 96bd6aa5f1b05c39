"""A change to open water is dated between its water index's rise and a basin's filling time before it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from eo_tasks.core.aoi_sections import ChangeParams
from eo_tasks.core.indices import spectral_indices
from eo_tasks.maps import region_dating
from eo_tasks.maps.annual_maps import YearResult
from eo_tasks.maps.dating import region_evidence
from eo_tasks.maps.feature_breaks import FILL_COMPOSITES, open_water_bounds
from eo_tasks.maps.region_dating import refine_dates
from eo_tasks.preprocess.scene_prep import CUBE_BANDS
from tests.unit.conftest import write_cube

PER_YEAR, WINDOW = 24, 15
CROP, WATER = 2, 8
DRY, FULL = -0.45, 0.5  # a field's NDWI, a reservoir's
FIELD = (0.04, 0.08, 0.06, 0.15, 0.25, 0.28, 0.30, 0.30, 0.20, 0.12)  # green crops, per CUBE_BANDS
WATER_SPECTRUM = (0.045, 0.055, 0.030, 0.022, 0.014, 0.011, 0.009, 0.008, 0.004, 0.003)
NIR, NIR08 = CUBE_BANDS.index("nir"), CUBE_BANDS.index("nir08")


def _basin(rise: int, length: int = 2 * PER_YEAR) -> np.ndarray:
    """A field's NDWI; a basin whose water index rises at ``rise`` (two composites) and stays water."""
    ndwi = np.full(length, DRY)
    ndwi[rise], ndwi[rise + 1], ndwi[rise + 2 :] = -0.2, -0.05, FULL
    return ndwi


def test_the_water_index_rise_bounds_a_basins_change() -> None:
    assert open_water_bounds(_basin(30), WINDOW) == (30 - FILL_COMPOSITES, 30)
    clouded = _basin(30)
    clouded[26:30] = np.nan  # unobserved before the rise: the change may have begun in the gap
    assert open_water_bounds(clouded, WINDOW) == (26 - FILL_COMPOSITES, 30)
    long_gap = _basin(30)
    long_gap[10:32] = np.nan  # nothing observed in the window before: the last dry one is the level
    assert open_water_bounds(long_gap, WINDOW) == (10 - FILL_COMPOSITES, 32)
    dug = np.where(np.arange(2 * PER_YEAR) >= 30, FULL, DRY)  # a pond dug at once
    assert open_water_bounds(dug, WINDOW) == (30 - FILL_COMPOSITES, 30)
    # a composite a fifth of the way or less to the water's level is the field's own variation
    autumn = _basin(30)
    autumn[29] = DRY + 0.15 * (FULL - DRY)
    assert open_water_bounds(autumn, WINDOW) == (30 - FILL_COMPOSITES, 30)


def test_water_that_came_and_went_or_does_not_stay_bounds_nothing() -> None:
    receded = _basin(30)
    receded[36:] = DRY  # a flood: wet for four composites of twelve
    assert open_water_bounds(receded, WINDOW) is None
    # the edge of a pond: wet from 20, dry again from 30 to 39, wet from 40 to the end. The water at
    # 20 does not stay, and 40 is no arrival: the months before it were wet a third of the time
    edge = np.full(2 * PER_YEAR, DRY)
    edge[20:30] = edge[40:] = 0.1
    assert open_water_bounds(edge, WINDOW) is None
    edge[25:30] = DRY  # wet a fifth of the time before 40: it arrived there
    assert open_water_bounds(edge, WINDOW) == (40 - FILL_COMPOSITES, 40)
    assert open_water_bounds(_basin(2 * PER_YEAR - 4), WINDOW) is None  # two wet composites: too few
    assert open_water_bounds(_basin(2 * PER_YEAR - 6), WINDOW) is not None  # four
    always = np.full(2 * PER_YEAR, FULL)
    assert open_water_bounds(always, WINDOW) is None


def test_a_date_outside_the_bounds_is_moved_inside() -> None:
    # A field's features jump at 20 (the published date); the water index bounds the change to 15..18.
    t = np.arange(2 * PER_YEAR)
    series = np.where(t >= 20, 10.0, 0.0)[:, None]
    unknown = np.full((PER_YEAR, 1), np.nan)
    assert region_evidence(series, unknown, PER_YEAR, 25, WINDOW, False, field=True).composite == 20
    bounded = region_evidence(series, unknown, PER_YEAR, 25, WINDOW, False, field=True, bounds=(15, 18))
    assert bounded.composite == 18
    inside = region_evidence(series, unknown, PER_YEAR, 25, WINDOW, False, field=True, bounds=(18, 22))
    assert inside.composite == 20


def test_a_reservoir_on_a_field_is_dated_by_its_water_index_not_by_the_new_crop(tmp_path: Path) -> None:
    # A field, 12 × 12 px, sown with another crop from composite 9 of the map year (its anomaly
    # departs there for good, the year-on-year anomaly dates the region there); its top-left
    # 6 × 6 becomes a reservoir at composite 12: a third water, two thirds at 13, water from 14.
    # Composites 12 to 15 are Landsat-only (the cube's nir, B08, filled in time from before).
    reflectance = np.empty((3 * PER_YEAR, 12, 12, len(CUBE_BANDS)), np.float32)
    reflectance[:] = FIELD
    year = 2 * PER_YEAR
    reflectance[year + 9 :, :6, :6, 3:8] -= 0.1  # the new crop (the fields around kept theirs)
    for composite, share in ((12, 1 / 3), (13, 2 / 3), *((c, 1.0) for c in range(14, PER_YEAR))):
        mixed = (1 - share) * np.asarray(FIELD) + share * np.asarray(WATER_SPECTRUM)
        if composite <= 15:
            mixed[NIR] = FIELD[NIR] - 0.1  # filled in time: the Sentinel-2 composites before were dry
        reflectance[year + composite, :6, :6] = mixed
    cubes = [
        write_cube(tmp_path / f"{y}.h5", y, reflectance[k * PER_YEAR : (k + 1) * PER_YEAR])
        for k, y in enumerate((2020, 2021, 2022))
    ]
    changed = np.zeros((12, 12), bool)
    changed[:6, :6] = True
    to_class = np.where(changed, WATER, CROP).astype(np.uint8)
    result = YearResult(
        to_class.copy(),
        changed,
        np.full((12, 12), CROP, np.uint8),
        to_class,
        np.zeros((12, 12), np.int32),
        np.where(changed, PER_YEAR + 14, -1).astype(np.int32),  # the labels flipped late
    )
    scale = np.full(len(CUBE_BANDS), 0.05, np.float32)
    refined, _ = refine_dates(result, cubes[1:], scale, False, ChangeParams(rules="platform"), cubes[0])
    assert refined.changed[:6, :6].all()
    dated = set(np.unique(refined.change_composite[:6, :6]).tolist())
    assert dated <= {PER_YEAR + 11, PER_YEAR + 12, PER_YEAR + 13}, dated


def test_the_water_index_is_read_on_the_near_infrared_both_sensors_observe(tmp_path: Path) -> None:
    # Water from composite 36; 36 to 39 are Landsat-only, their nir (B08) filled in time from the
    # field before: on B08 they are neither dry nor wet (bright in the near infrared, like snow).
    reflectance = np.tile(np.asarray(FIELD, np.float32), (2 * PER_YEAR, 1))
    reflectance[36:] = WATER_SPECTRUM
    reflectance[36:40, NIR] = FIELD[NIR]
    on_b08 = spectral_indices(reflectance[36], CUBE_BANDS)["ndwi"]
    assert on_b08 < 0.0 < spectral_indices(reflectance[36], CUBE_BANDS, nir_band="nir08")["ndwi"]
    ground = np.full((PER_YEAR, 1, 1, len(CUBE_BANDS)), 0.1, np.float32)
    cube = write_cube(tmp_path / "2022.h5", 2022, ground)
    scale = np.full(len(CUBE_BANDS), 0.05, np.float32)
    setting = region_dating._Setting([cube], None, scale, False, WINDOW, PER_YEAR, True)
    assert region_dating._water_bounds(reflectance / scale, setting) == (36 - FILL_COMPOSITES, 36)
