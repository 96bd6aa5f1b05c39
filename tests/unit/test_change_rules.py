"""The platform's change rules (``maps.rules: platform``) against the published ones, on hand-made data.

Each rule was added for a failure the accuracy suite measured (README, *Accuracy*): changes late in
the last year never persisting half a window, dates at the largest seasonal jump instead of the
change, and label flips the ground never made.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from eo_tasks.core.aoi_sections import ChangeParams
from eo_tasks.core.cube import Cube
from eo_tasks.core.errors import ConfigError
from eo_tasks.maps import region_dating
from eo_tasks.maps.annual_maps import YearResult
from eo_tasks.maps.changes import MIN_RUN, analyse_sequences
from eo_tasks.maps.dating import (
    MIN_LASTING_ANOMALY,
    despiked,
    first_lasting_departure,
    first_lasting_shift,
    lasting_break,
    region_evidence,
    year_on_year,
)
from eo_tasks.maps.feature_breaks import break_composite, first_stage, seasonal_jump
from eo_tasks.maps.region_dating import FRAGMENT_PX, borrowed_dates, dating_regions, refine_dates
from eo_tasks.maps.spectra import (
    landscape_anomaly,
    reference_box,
    reference_pixels,
    region_series,
    similar_neighbours,
)
from eo_tasks.preprocess.scene_prep import CUBE_BANDS
from tests.unit.conftest import write_cube

CROP, GRASS, TREE, SHRUB, BARE, WATER, WETLAND = 2, 3, 4, 5, 6, 8, 9
STEPS = 34  # window positions over two years of 24 composites, w = 15
PLATFORM, PUBLISHED = ChangeParams(rules="platform"), ChangeParams(rules="published")
PER_YEAR = 24


def _flip_from(start: int, label: int = BARE, base: int = TREE) -> np.ndarray:
    labels = np.full((STEPS, 1), base)
    labels[start:] = label
    return labels


@pytest.mark.parametrize("run", [MIN_RUN, 5, 7])
def test_a_change_begun_late_in_the_series_counts_under_platform_rules_only(run: int) -> None:
    labels = _flip_from(STEPS - run)
    assert analyse_sequences(labels, np.array([TREE]), PLATFORM).changed.tolist() == [True]
    assert analyse_sequences(labels, np.array([TREE]), PUBLISHED).changed.tolist() == [False]


def test_a_flip_of_the_last_windows_only_or_one_that_ends_is_no_change() -> None:
    too_short = _flip_from(STEPS - MIN_RUN + 1)
    assert analyse_sequences(too_short, np.array([TREE]), PLATFORM).changed.tolist() == [False]
    ended = _flip_from(STEPS - 7)
    ended[-2:] = TREE  # back to the initial label before the end: not lasting
    assert analyse_sequences(ended, np.array([TREE]), PLATFORM).changed.tolist() == [False]


def test_a_change_in_mid_series_is_found_alike_under_both_rules() -> None:
    labels = _flip_from(12)
    platform = analyse_sequences(labels, np.array([TREE]), PLATFORM)
    published = analyse_sequences(labels, np.array([TREE]), PUBLISHED)
    assert platform.changed.tolist() == published.changed.tolist() == [True]
    assert platform.date_composite.tolist() == published.date_composite.tolist()


def test_a_change_in_the_first_windows_counts_under_platform_rules_only() -> None:
    labels = _flip_from(MIN_RUN)  # the initial label in the first three windows only
    assert analyse_sequences(labels, np.array([TREE]), PLATFORM).changed.tolist() == [True]
    assert analyse_sequences(labels, np.array([TREE]), PUBLISHED).changed.tolist() == [False]
    from_the_start = _flip_from(1)
    assert analyse_sequences(from_the_start, np.array([TREE]), PLATFORM).changed.tolist() == [False]


def test_unknown_rules_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"maps.rules: expected one of platform, published"):
        ChangeParams.from_dict({"rules": "mine"})
    assert ChangeParams.from_dict({"rules": "published", "window": "9"}) == ChangeParams(
        window=9, rules="published"
    )


# --- dating and checking on spectra ---------------------------------------------------------------


def _seasonal(years: int) -> np.ndarray:
    """One feature over ``years`` years: leaf-on (+3) from composite 8 to 19 of every year."""
    t = np.arange(years * PER_YEAR)
    return np.where((t % PER_YEAR >= 8) & (t % PER_YEAR < 20), 3.0, 0.0)[:, None]


def test_year_on_year_cancels_the_seasons() -> None:
    series = _seasonal(2)
    before = _seasonal(1)
    assert np.all(year_on_year(series, before, PER_YEAR) == 0)
    unknown = year_on_year(series, np.full((PER_YEAR, 1), np.nan), PER_YEAR)
    assert np.isnan(unknown[:PER_YEAR]).all() and np.all(unknown[PER_YEAR:] == 0)


def test_the_landscape_explains_anomalies_away_and_never_adds_one() -> None:
    series, before = _seasonal(2), _seasonal(1)
    series[30:36] -= 2.0  # a dry summer, on this region and on the ground around it
    landscape = np.zeros((2, 2 * PER_YEAR, 1))
    landscape[0, 30:36] = -2.0
    landscape[0, 40:44] = 5.0  # the ground around changed unseen (a quarry mapped as stable bare)
    assert np.abs(year_on_year(series, before, PER_YEAR, landscape)).max() == 0.0
    assert np.abs(year_on_year(series, before, PER_YEAR)[30:36]).min() == 2.0


def test_a_change_is_dated_on_the_anomaly_where_the_seasons_jump_more() -> None:
    # Fields stripped to soil at composite 32 (−2), built on at 38 (−0.5 more), in the second year;
    # the leaf fall at 44 is the largest jump of the features in the first flipped window.
    series = _seasonal(2)
    series[32:] -= 2.0
    series[38:] -= 0.5
    before = _seasonal(1)
    flip_end, window = 44, 15
    published = region_evidence(series, before, PER_YEAR, flip_end, window, use_anomaly=False)
    assert not published.anomaly_dated and published.composite == 44  # the season, not the change
    found = region_evidence(series, before, PER_YEAR, flip_end, window, use_anomaly=True)
    assert found.anomaly_dated and found.composite == 32
    assert found.lasting >= 2.0


def test_a_temporary_anomaly_does_not_last() -> None:
    series = _seasonal(2)
    series[33:37] -= 3.0  # a drought: four browner composites, then the usual season again
    found = region_evidence(series, _seasonal(1), PER_YEAR, 40, 15, use_anomaly=True)
    assert found.lasting < MIN_LASTING_ANOMALY


def _noisy(years: int, seed: int = 0) -> np.ndarray:
    """:func:`_seasonal` plus a little noise (a real region's median series is never flat)."""
    return _seasonal(years) + np.random.default_rng(seed).normal(0, 0.05, (years * PER_YEAR, 1))


def test_a_fire_is_dated_at_its_departure_though_winter_narrows_the_anomaly() -> None:
    # Burnt at composite 14 of the first year: black ground differs from the forest by 4 in
    # leaf-on composites but by only 1.2 in winter ones; a snowy January (24, 25) on top.
    series, before = _noisy(2), _noisy(1, seed=1)
    leaf_on = (np.arange(2 * PER_YEAR) % PER_YEAR >= 8) & (np.arange(2 * PER_YEAR) % PER_YEAR < 20)
    series[14:, 0] += np.where(leaf_on[14:], -4.0, -1.2)
    series[24:26, 0] += 6.0
    assert first_lasting_departure(series, before, PER_YEAR, 8, 30, 15) == 14
    assert region_evidence(series, before, PER_YEAR, 20, 15, use_anomaly=True).composite == 14


def test_a_snowy_winter_before_a_change_is_not_its_date() -> None:
    # A snowy January (composites 24-25 depart, then the anomaly is back), windthrow at 31.
    series, before = _noisy(2), _noisy(1, seed=1)
    series[24:26, 0] += 6.0
    series[31:, 0] -= 3.0
    assert first_lasting_departure(series, before, PER_YEAR, 20, 40, 15) == 31
    assert np.isnan(despiked(np.array([0.1, 0.2, 6.0, 0.1, 0.2]))[2])  # up and back: a spike
    assert despiked(np.array([0.1, 0.2, 6.0, 4.0, 3.5])).tolist() == [0.1, 0.2, 6.0, 4.0, 3.5]


def test_an_unobserved_gap_dates_the_change_at_its_middle() -> None:
    series, before = _noisy(2), _noisy(1, seed=1)
    series[30:, 0] -= 3.0
    series[28:33] = np.nan  # clouds from composite 28 to 32: the change lies somewhere in there
    assert first_lasting_departure(series, before, PER_YEAR, 20, 40, 15) == 30
    assert lasting_break(series, before, PER_YEAR, 20, 40, 15) == 30


def test_without_the_usual_variation_the_two_level_fit_dates_it() -> None:
    series = _noisy(2)
    series[31:, 0] -= 3.0
    unknown = np.full((PER_YEAR, 1), np.nan)  # the first year: no year before, nothing usual known
    assert first_lasting_departure(series, unknown, PER_YEAR, 20, 40, 15) is None
    assert lasting_break(series, unknown, PER_YEAR, 26, 40, 15) == 31


def test_one_observed_composite_before_the_window_is_enough_usual_variation() -> None:
    # Landsat-heavy and cloudy: of the 15 composites before the window only composite 24 (the
    # second year's first; the first year has no year before) was observed.
    series = _noisy(2)
    series[40:, 0] -= 3.0
    series[25:27] = series[32:39:2] = np.nan
    unknown = np.full((PER_YEAR, 1), np.nan)
    assert first_lasting_departure(series, unknown, PER_YEAR, 27, 48, 15) == 40


def test_without_a_year_before_a_change_is_dated_against_the_neighbours_most_like_it() -> None:
    # A conifer stand cleared at composite 14 of the series' first year (no year before): 30
    # conifers around it keep their needles all year, 70 broadleaves (brighter bare crowns in
    # winter) leaf out at 8 and shed at 20.
    rng = np.random.default_rng(3)
    conifers = rng.normal(0, 0.05, (30, 2 * PER_YEAR, 1))
    broadleaves = 0.5 + _seasonal(2)[None] + rng.normal(0, 0.05, (70, 2 * PER_YEAR, 1))
    series = _noisy(2) - _seasonal(2)
    series[14:] -= 3.0
    unknown = np.full((PER_YEAR, 1), np.nan)
    neighbours = np.concatenate([conifers, broadleaves])
    found = region_evidence(series, unknown, PER_YEAR, 20, 15, True, None, neighbours)
    assert found.anomaly_dated and found.composite == 14
    assert first_lasting_shift(series - np.median(neighbours, axis=0), 6, 27, 15) == 8  # all: leaf-out
    similar = similar_neighbours(neighbours, series, slice(0, 6))
    assert similar is not None and np.abs(similar).max() < 0.1  # the conifers' median


def test_regions_are_split_by_their_labels_dates_under_platform_rules() -> None:
    changed = np.zeros((6, 12), bool)
    changed[1:5, 1:11] = True  # one connected patch: a fire (left) next to a quarry (right)
    composite = np.where(changed, 14, -1).astype(np.int32)
    composite[:, 6:] = np.where(changed[:, 6:], 44, -1)
    classes = np.full((6, 12), TREE, np.uint8)
    result = YearResult(classes, changed, classes, classes, np.zeros((6, 12), np.int32), composite)
    assert dating_regions(result, 0).max() == 1
    regions = dating_regions(result, 15)
    assert regions.max() == 2 and len(set(regions[1:5, 1:6].ravel())) == 1
    assert regions[2, 2] != regions[2, 8]


def test_where_the_features_break_at_the_season_the_labels_date_stands() -> None:
    # Wheat (green from composite 8 to 13) the year before, barley (4 to 11) in the series' first
    # year: the rotation's anomaly is 1 to 3 all season. The field is built on after the harvest,
    # at 18 (stage one, 1.0; buildings, 2.0, from the next year), an anomaly no larger than the
    # rotation's. The features' largest jump in the window is barley's harvest at 12, and wheat
    # was harvested at 14 the year before: the season. The labels flipped at 18 (flip_end 25).
    t = np.arange(2 * PER_YEAR) % PER_YEAR
    wheat = np.where((t[:PER_YEAR] >= 8) & (t[:PER_YEAR] < 14), 2.0, 0.0)[:, None]
    series = np.where((t >= 4) & (t < 12), 3.0, 0.0)[:, None]
    series[18:PER_YEAR], series[PER_YEAR:] = 1.0, 2.0
    assert break_composite(series, 11, 25) == 12 and seasonal_jump(series, wheat, PER_YEAR, 12)
    found = region_evidence(series, wheat, PER_YEAR, 25, 15, True)
    assert not found.anomaly_dated and found.composite == 18
    assert region_evidence(series, wheat, PER_YEAR, 25, 15, False).composite == 12  # published rules
    # no year before (a reservoir filled in the series' first year): the features' break stands
    unknown = np.full((PER_YEAR, 1), np.nan)
    assert not seasonal_jump(series, unknown, PER_YEAR, 12)
    assert region_evidence(series, unknown, PER_YEAR, 25, 15, True).composite == 12


def test_where_nothing_tells_a_harvest_from_a_building_site_the_labels_date_stands() -> None:
    # The field above with no year before it (the AOI's first year): its harvest at 12 and the
    # building site at 18 are both bare ground. A change a harvest looks like (to bare or built
    # ground) takes the labels' date; one it does not (a reservoir's water) its features' break.
    t = np.arange(2 * PER_YEAR) % PER_YEAR
    series = np.where((t >= 4) & (t < 12), 3.0, 0.0)[:, None]
    series[18:PER_YEAR], series[PER_YEAR:] = 1.0, 2.0
    unknown = np.full((PER_YEAR, 1), np.nan)
    assert region_evidence(series, unknown, PER_YEAR, 25, 15, True, like_a_harvest=True).composite == 18
    assert region_evidence(series, unknown, PER_YEAR, 25, 15, True, like_a_harvest=False).composite == 12
    assert region_evidence(series, unknown, PER_YEAR, 25, 15, False, like_a_harvest=True).composite == 12


def test_a_change_in_stages_is_dated_at_its_first_stage() -> None:
    # A pond dug in a field at 18: half water for two composites (level 4), full from 20 (level
    # 10). The features' largest jump is the second stage, at 20; the first stage is at 18.
    t = np.arange(2 * PER_YEAR)
    series = np.where(t >= 18, 4.0, 0.0)[:, None]
    series[20:] = 10.0
    series[16, 0] = 1.0  # an autumn composite of the field: a tenth of the step, not the change
    assert break_composite(series, 11, 25) == 20
    assert first_stage(series, 20, 11) == 18
    assert first_stage(series, 20, 19) == 19  # not before the first composite it may be dated at
    abrupt = np.where(t >= 20, 10.0, 0.0)[:, None]
    assert first_stage(abrupt, 20, 11) == 20
    # under platform rules (no year before, a field: the features date it), the published keep 20
    unknown = np.full((PER_YEAR, 1), np.nan)
    assert region_evidence(series, unknown, PER_YEAR, 25, 15, True, field=True).composite == 18
    assert region_evidence(series, unknown, PER_YEAR, 25, 15, False, field=True).composite == 20


def test_a_fragment_takes_the_date_of_the_large_region_it_borders() -> None:
    regions = np.zeros((24, 24), np.int32)
    regions[0:10, 0:10] = 1  # a windthrow, dated 20 on its anomaly
    regions[11, 0:3] = 2  # its edge, flipped a window later: one row of unchanged pixels between
    regions[11, 5:8] = 3  # as near, but grassland before: another change
    regions[16, 0:3] = 4  # six pixels away: its own change
    regions[14:19, 14:19] = 5  # a large region the anomaly could not date
    regions[19, 14:16] = 6  # and a fragment of it
    old_classes = {1: TREE, 2: TREE, 3: GRASS, 4: TREE, 5: TREE, 6: TREE}
    anomaly_dates = {1: 20, 2: 35, 3: 33, 4: 31, 6: 30}
    assert (regions == 5).sum() >= FRAGMENT_PX > (regions == 2).sum()
    assert borrowed_dates(regions, old_classes, anomaly_dates) == {2: 20}


# --- refine_dates on a real (tiny) cube file ------------------------------------------------------


def _forest_cubes(folder: Path, cleared_in: int, at: int = 10) -> list[Cube]:
    """Three years of a 12 × 12 forest; the top-left 6 × 6 cleared at composite ``at`` of ``cleared_in``."""
    season = _seasonal(3)[:, 0] / 30.0  # leaf-on adds 0.1 to the NIR bands
    reflectance = np.full((3 * PER_YEAR, 12, 12, len(CUBE_BANDS)), 0.05, np.float32)
    reflectance[..., 3:8] += season[:, None, None, None]
    reflectance[cleared_in * PER_YEAR + at :, :6, :6, :] = 0.2  # bare soil
    reflectance[cleared_in * PER_YEAR + 12, :, :, :] = np.nan  # a cloudy composite
    years = (2020, 2021, 2022)
    return [
        write_cube(folder / f"{y}.h5", y, reflectance[k * PER_YEAR : (k + 1) * PER_YEAR])
        for k, y in enumerate(years)
    ]


@pytest.fixture
def cubes(tmp_path: Path) -> list[Cube]:
    """The forest cleared in the third year."""
    return _forest_cubes(tmp_path, cleared_in=2)


def _result(rule_composite: int) -> YearResult:
    """Two change regions in the labels: the clearing (top left) and a flip the ground never made."""
    changed = np.zeros((12, 12), bool)
    changed[:6, :6] = changed[7:, 7:] = True
    from_class = np.full((12, 12), TREE, np.uint8)
    to_class = np.where(changed, BARE, TREE).astype(np.uint8)
    to_class[7:, 7:] = SHRUB
    composite = np.where(changed, rule_composite, -1).astype(np.int32)
    return YearResult(to_class.copy(), changed, from_class, to_class, np.zeros((12, 12), np.int32), composite)


def test_refine_dates_keeps_the_clearing_dated_right_and_drops_the_flip(cubes: list[Cube]) -> None:
    scale = np.full(len(CUBE_BANDS), 0.05, np.float32)
    result = _result(rule_composite=PER_YEAR + 10 + 3)  # the half-window rule, three composites late
    refined, evidence = refine_dates(result, cubes[1:], scale, False, PLATFORM, year_before=cubes[0])
    assert refined.changed[:6, :6].all() and not refined.changed[7:, 7:].any()
    assert set(np.unique(refined.change_composite[:6, :6])) == {PER_YEAR + 10}
    assert (refined.classes[7:, 7:] == TREE).all() and (refined.to_class[7:, 7:] == TREE).all()
    assert (refined.change_days[7:, 7:] == 0).all() and (refined.classes[:6, :6] == BARE).all()
    assert [e.lasting >= MIN_LASTING_ANOMALY for e in evidence] == [True, False]


def test_regions_dated_from_small_held_windows_or_in_worker_processes_are_dated_as_from_one_window(
    cubes: list[Cube], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Blocks of 4 px and windows cut 2 px past them: the clearing's pixels lie inside its window, the
    # ground around both regions and the second region's pixels do not (those reads go to the file).
    # The same blocks dated by two spawned processes give the same results too.
    scale = np.full(len(CUBE_BANDS), 0.05, np.float32)
    result = _result(rule_composite=PER_YEAR + 10 + 3)
    whole = refine_dates(result, cubes[1:], scale, False, PLATFORM, year_before=cubes[0])
    monkeypatch.setattr(region_dating, "READ_BLOCK_PX", 4)
    monkeypatch.setattr(region_dating, "READ_MARGIN_PX", 2)
    monkeypatch.setattr(region_dating, "REFERENCE_PAD_PX", 0)
    pieces = refine_dates(result, cubes[1:], scale, False, PLATFORM, year_before=cubes[0])
    in_two_processes = refine_dates(
        result, cubes[1:], scale, False, PLATFORM, year_before=cubes[0], workers=2
    )
    for other in (pieces, in_two_processes):
        assert other[1] == whole[1]
        for name in ("classes", "changed", "change_composite", "change_days"):
            np.testing.assert_array_equal(getattr(other[0], name), getattr(whole[0], name))


def test_published_rules_keep_every_region_and_date_on_the_features(cubes: list[Cube]) -> None:
    scale = np.full(len(CUBE_BANDS), 0.05, np.float32)
    result = _result(rule_composite=PER_YEAR + 10 + 3)
    refined, evidence = refine_dates(result, cubes[1:], scale, False, PUBLISHED, year_before=cubes[0])
    assert refined.changed.sum() == result.changed.sum()
    assert not any(e.anomaly_dated for e in evidence)


def test_a_change_in_the_series_first_year_is_checked_against_the_season_before_it(tmp_path: Path) -> None:
    # Cleared in 2021, the first year of a 2021-2022 series, with no cube of 2020: the composites of
    # 2022 before the clearing's season are compared with 2021 before the clearing (a lasting
    # anomaly); later ones would compare soil with soil, and are not used. It is dated against the
    # forest around it, which it resembled until then.
    cubes = _forest_cubes(tmp_path, cleared_in=1)
    scale = np.full(len(CUBE_BANDS), 0.05, np.float32)
    result = _result(rule_composite=10 + 3)
    refined, evidence = refine_dates(result, cubes[1:], scale, False, PLATFORM, year_before=None)
    assert refined.changed[:6, :6].all() and not refined.changed[7:, 7:].any()
    assert evidence[0].anomaly_dated and evidence[0].composite == 10
    fields = replace(result, from_class=np.full((12, 12), 2, np.uint8))  # cropland: not its neighbours
    assert not refine_dates(fields, cubes[1:], scale, False, PLATFORM, year_before=None)[1][0].anomaly_dated


def test_the_aoi_file_chooses_the_rules() -> None:
    from eo_tasks.core.aoi_sections import MapsSpec

    assert MapsSpec.from_dict({"rules": "published"}).changes.rules == "published"
    assert MapsSpec.from_dict({}).changes.rules == "platform"
    with pytest.raises(ConfigError, match=r"maps\.rules"):
        MapsSpec.from_dict({"rules": "none"})


def test_ground_changed_for_good_is_a_candidate_without_any_label_flip(cubes: list[Cube]) -> None:
    from eo_tasks.maps.spectral_changes import lasting_anomaly_candidates

    scale = np.full(len(CUBE_BANDS), 0.05, np.float32)
    forest = np.full((12, 12), TREE, np.uint8)
    found, composite, to_class = lasting_anomaly_candidates(cubes[1:], scale, False, forest, block_px=8)
    assert found[:6, :6].all() and found.sum() == 36  # the clearing, nothing else
    assert set(np.unique(composite[:6, :6])) == {PER_YEAR + 10}
    assert (to_class[:6, :6] == BARE).all() and (to_class[6:, 6:] == TREE).all()
    fields = forest.copy()
    fields[:6, :6] = 2  # cropland: a new crop every year is such an anomaly too, so it is not checked
    assert not lasting_anomaly_candidates(cubes[1:], scale, False, fields)[0].any()


def test_a_change_late_in_the_previous_year_is_found_the_next_year(tmp_path: Path) -> None:
    # Cleared in the last December but one of 2021: 2021's run had two composites after it, too
    # few; 2022's anomaly against 2021 is high from January, with nothing quiet before it. With the
    # cube of 2020, 2022's run finds it in 2021: quiet against 2020 before it, changed after it.
    from eo_tasks.maps.spectral_changes import lasting_anomaly_candidates

    cubes = _forest_cubes(tmp_path, cleared_in=1, at=PER_YEAR - 2)
    scale = np.full(len(CUBE_BANDS), 0.05, np.float32)
    forest = np.full((12, 12), TREE, np.uint8)
    assert not lasting_anomaly_candidates(cubes[:2], scale, False, forest)[0].any()  # 2021's run
    assert not lasting_anomaly_candidates(cubes[1:], scale, False, forest)[0].any()  # 2020 unknown
    found, composite, to_class = lasting_anomaly_candidates(
        cubes[1:], scale, False, forest, year_before=cubes[0]
    )
    assert found[:6, :6].all() and found.sum() == 36
    assert set(np.unique(composite[:6, :6])) == {PER_YEAR - 2}  # in 2021, the first cube of the pair
    assert (to_class[:6, :6] == BARE).all()
    # a change the previous map already holds is not found again; nor a field's (a new crop)
    settled = np.zeros((12, 12), bool)
    settled[:6, :6] = True
    assert not lasting_anomaly_candidates(
        cubes[1:], scale, False, forest, year_before=cubes[0], settled=settled
    )[0].any()
    fields = np.where(settled, 2, TREE).astype(np.uint8)
    assert not lasting_anomaly_candidates(cubes[1:], scale, False, fields, year_before=cubes[0])[0].any()
    # cleared in 2022 instead, after a winter and spring unlike 2021's (the map year's rule sees no quiet
    # time before it): 2021's last composites are unchanged, so it is no change of 2021
    (tmp_path / "this").mkdir()
    this_year = _forest_cubes(tmp_path / "this", cleared_in=2, at=10)
    spring, _ = this_year[2].read()
    spring[:8] = 0.12
    this_year[2] = write_cube(tmp_path / "this" / "2022-spring.h5", 2022, spring)
    assert not lasting_anomaly_candidates(this_year[1:], scale, False, forest, year_before=this_year[0])[
        0
    ].any()
    # cleared in 2020 instead: 2021 and 2022 look alike, nothing is found
    (tmp_path / "early").mkdir()
    early = _forest_cubes(tmp_path / "early", cleared_in=0, at=PER_YEAR - 2)
    assert not lasting_anomaly_candidates(early[1:], scale, False, forest, year_before=early[0])[0].any()


FIELD = (0.04, 0.08, 0.06, 0.15, 0.25, 0.28, 0.30, 0.30, 0.20, 0.12)  # green crops, per CUBE_BANDS
WATER_SPECTRUM = (0.045, 0.055, 0.030, 0.022, 0.014, 0.011, 0.009, 0.008, 0.004, 0.003)  # NDSI 0.86
SNOW_SPECTRUM = (0.88, 0.87, 0.85, 0.83, 0.79, 0.77, 0.75, 0.73, 0.07, 0.05)


def _field_cubes(folder: Path, wet: dict[int, tuple[float, ...]]) -> list[Cube]:
    """Three years of a 12 × 12 field; the top-left 6 × 6 has the given spectrum at the given
    composites of the three-year series (``wet``: composite → spectrum)."""
    reflectance = np.empty((3 * PER_YEAR, 12, 12, len(CUBE_BANDS)), np.float32)
    reflectance[:] = FIELD
    for composite, spectrum in wet.items():
        reflectance[composite, :6, :6] = spectrum
    return [
        write_cube(folder / f"{y}.h5", y, reflectance[k * PER_YEAR : (k + 1) * PER_YEAR])
        for k, y in enumerate((2020, 2021, 2022))
    ]


def test_open_water_that_stays_is_water_whatever_the_field_did(tmp_path: Path) -> None:
    # A pond dug in a field in June of the map year (composite 10 of 2022): fields are left out of
    # the anomaly candidates (a new crop every year), but no crop looks like open water. Open water
    # is dark in the short-wave infrared (NDSI 0.86), like snow, but not bright in the near infrared.
    from eo_tasks.maps.lasting_breaks import is_snow
    from eo_tasks.maps.spectral_changes import lasting_anomaly_candidates

    assert not is_snow(np.float32(0.86), np.float32(0.009)) and is_snow(np.float32(0.86), np.float32(0.75))
    scale = np.full(len(CUBE_BANDS), 0.05, np.float32)
    fields = np.full((12, 12), 2, np.uint8)
    pond = _field_cubes(tmp_path, {c: WATER_SPECTRUM for c in range(2 * PER_YEAR + 10, 3 * PER_YEAR)})
    found, composite, to_class = lasting_anomaly_candidates(pond[1:], scale, False, fields)
    assert found[:6, :6].all() and found.sum() == 36
    assert set(np.unique(composite[:6, :6])) == {PER_YEAR + 10} and (to_class[:6, :6] == WATER).all()
    # a flood in the spring that recedes, and snow every winter, are no new water
    (tmp_path / "flood").mkdir()
    passing = {c: WATER_SPECTRUM for c in range(2 * PER_YEAR + 4, 2 * PER_YEAR + 9)}
    passing |= {c: SNOW_SPECTRUM for y in range(3) for c in (y * PER_YEAR, y * PER_YEAR + 23)}
    flood = _field_cubes(tmp_path / "flood", passing)
    assert not lasting_anomaly_candidates(flood[1:], scale, False, fields)[0].any()
    # water that was there the year before too is no change; nor where the map already has water
    (tmp_path / "lake").mkdir()
    lake = _field_cubes(tmp_path / "lake", {c: WATER_SPECTRUM for c in range(PER_YEAR + 10, 3 * PER_YEAR)})
    assert not lasting_anomaly_candidates(lake[1:], scale, False, fields)[0].any()
    mapped = np.where(fields == 2, WATER, fields).astype(np.uint8)
    assert not lasting_anomaly_candidates(pond[1:], scale, False, mapped)[0].any()


def test_a_season_that_comes_back_is_no_candidate(tmp_path: Path) -> None:
    from eo_tasks.maps.spectral_changes import lasting_anomaly_candidates

    cubes = _forest_cubes(tmp_path, cleared_in=0)  # cleared in 2020: 2021 and 2022 look alike
    scale = np.full(len(CUBE_BANDS), 0.05, np.float32)
    reflectance, _ = cubes[2].read()
    assert not lasting_anomaly_candidates(cubes[1:], scale, False, np.full((12, 12), TREE, np.uint8))[0].any()
    drought = reflectance.copy()
    drought[8:14, 6:, 6:, :] = 0.2  # six dry composites in the summer of 2022, then the forest again
    cubes[2] = write_cube(tmp_path / "2022-drought.h5", 2022, drought)
    assert not lasting_anomaly_candidates(cubes[1:], scale, False, np.full((12, 12), TREE, np.uint8))[0].any()


def _thinned_forest_cubes(folder: Path, thinned_from: int) -> list[Cube]:
    """Three years of a 12 × 12 evergreen forest (NDVI 0.82); from composite ``thinned_from`` of
    2022 the top-left 6 × 6 is green ground without its canopy (NDVI 0.54)."""
    names = list(CUBE_BANDS)
    red, nirs = names.index("red"), [names.index("nir"), names.index("nir08")]
    reflectance = np.full((3 * PER_YEAR, 12, 12, len(names)), 0.05, np.float32)
    reflectance[..., red] = 0.03
    reflectance[..., nirs] = 0.30
    felled = reflectance[2 * PER_YEAR + thinned_from :, :6, :6]
    felled[..., red], felled[..., nirs] = 0.06, 0.20
    reflectance[2 * PER_YEAR + thinned_from :, :6, :6] = felled
    return [
        write_cube(folder / f"{y}.h5", y, reflectance[k * PER_YEAR : (k + 1) * PER_YEAR])
        for k, y in enumerate((2020, 2021, 2022))
    ]


def test_trees_that_lost_their_canopy_for_good_but_stay_green_are_grassland(tmp_path: Path) -> None:
    from eo_tasks.maps.spectral_changes import lasting_anomaly_candidates

    scale = np.full(len(CUBE_BANDS), 0.05, np.float32)
    forest = np.full((12, 12), TREE, np.uint8)
    cubes = _thinned_forest_cubes(tmp_path, thinned_from=6)  # June: half a year and more after it
    found, composite, to_class = lasting_anomaly_candidates(cubes[1:], scale, False, forest)
    assert found[:6, :6].all() and found.sum() == 36
    assert (to_class[:6, :6] == GRASS).all() and set(np.unique(composite[:6, :6])) == {PER_YEAR + 6}
    # the same from October: a few composites cannot tell it from an early leaf fall
    (tmp_path / "late").mkdir()
    late = _thinned_forest_cubes(tmp_path / "late", thinned_from=18)
    assert not lasting_anomaly_candidates(late[1:], scale, False, forest)[0].any()
    # grassland that greens less is no felled stand
    assert not lasting_anomaly_candidates(cubes[1:], scale, False, np.full((12, 12), GRASS, np.uint8))[
        0
    ].any()


def test_canopy_loss_is_what_a_stand_lost_beyond_the_other_trees() -> None:
    from eo_tasks.core.indices import spectral_indices
    from eo_tasks.maps.spectral_changes import _canopy_loss

    names = list(CUBE_BANDS)
    red, nir = names.index("red"), names.index("nir")
    before = np.full((4, 100, len(names)), 0.05, np.float32)
    before[..., red], before[..., nir] = 0.03, 0.30  # NDVI 0.818 a year earlier, every pixel
    ndvi = np.full((4, 100), 0.70, np.float32)  # a dry year: every tree lost 0.118
    ndvi[:, 0] = 0.50  # this one lost 0.2 more
    ndvi[1, 1] = np.nan  # unobserved now
    from_break = np.ones((4, 100), bool)
    from_break[:2, 0] = False  # its break at composite 2
    trees = np.ones(100, bool)
    trees[0] = False
    ndvi_before = spectral_indices(before, names)["ndvi"]
    loss = _canopy_loss(ndvi, ndvi_before, from_break, trees)
    np.testing.assert_allclose(loss[[0, 1, 2]], [0.2, 0.0, 0.0], atol=1e-5)
    alone = _canopy_loss(ndvi, ndvi_before, from_break, np.zeros(100, bool))
    np.testing.assert_allclose(alone[0], 0.318, atol=1e-3)  # no other trees to compare: all of it


def test_the_first_map_is_the_state_of_the_years_first_window_under_platform_rules() -> None:
    from eo_tasks.maps.annual_maps import LabelSeries, first_year_map

    labels = np.full((10, 4, 4), TREE, np.uint8)
    labels[6:, :2, :] = BARE  # a quarry opened in October: the last windows of the first year
    annual = np.where(np.arange(4)[:, None] < 2, BARE, TREE).repeat(4, axis=1).astype(np.uint8)
    dates = [dt.date(2021, 1, 8) + dt.timedelta(days=15 * k) for k in range(24)]
    series = LabelSeries.from_array(labels, annual, dates, 15, "m1", block_px=2)
    assert (first_year_map(series, "published").classes[:2] == BARE).all()  # the whole year's majority
    assert (first_year_map(series, "platform").classes == TREE).all()  # before the quarry: found next year


def test_a_drought_over_the_whole_landscape_neither_dates_nor_makes_a_change(tmp_path: Path) -> None:
    # 16 × 16 grassland. From composite 14 of 2022 to the series' end a drought browns all of it;
    # the top-left 6 × 6 is built on at composite 18; the bottom-right 6 × 6 only flipped labels.
    # Against the year before alone, both depart at 14 and stay up; against the stable grassland
    # around them, only the building site departs, at 18. In spring, rows of it moved different
    # ways (as fields do from one crop to the next): no landscape anomaly.
    season = _seasonal(3)[:, 0] / 30.0
    reflectance = np.full((3 * PER_YEAR, 16, 16, len(CUBE_BANDS)), 0.05, np.float32)
    reflectance[..., 3:8] += season[:, None, None, None]
    reflectance[2 * PER_YEAR + 14 :, :, :, 3:8] -= 0.05  # browner: less NIR
    reflectance[2 * PER_YEAR + 14 :, :, :, 8:] += 0.05  # drier: more SWIR
    reflectance[2 * PER_YEAR + 18 :, :6, :6, :] = 0.25  # concrete and soil
    crops = np.array([0.02, 0.02, -0.06, 0.1])[np.arange(16) % 4]  # rotation: each row its own way
    reflectance[2 * PER_YEAR + 4 : 2 * PER_YEAR + 10, :, :, 3:8] += crops[None, :, None, None]
    cubes = [
        write_cube(tmp_path / f"{y}.h5", y, reflectance[k * PER_YEAR : (k + 1) * PER_YEAR])
        for k, y in enumerate((2020, 2021, 2022))
    ]
    changed = np.zeros((16, 16), bool)
    changed[:6, :6] = changed[10:, 10:] = True
    grass = np.full((16, 16), 3, np.uint8)
    to_class = np.where(changed, 1, 3).astype(np.uint8)
    composite = np.where(changed, PER_YEAR + 20, -1).astype(np.int32)
    result = YearResult(to_class.copy(), changed, grass, to_class, np.zeros((16, 16), np.int32), composite)
    scale = np.full(len(CUBE_BANDS), 0.05, np.float32)

    refined, evidence = refine_dates(result, cubes[1:], scale, False, PLATFORM, year_before=cubes[0])
    assert set(np.unique(refined.change_composite[:6, :6])) == {PER_YEAR + 18}
    assert refined.changed[:6, :6].all() and not refined.changed[10:, 10:].any()

    site, box = np.zeros((16, 16), bool), (slice(0, 6), slice(0, 6))
    site[box] = True
    around = reference_box(box, changed.shape)
    reference = reference_pixels(cubes[1:], cubes[0], around, ~changed[around], scale, False)
    assert reference is not None
    landscape = landscape_anomaly(*reference, PER_YEAR)
    assert np.allclose(landscape[0, : PER_YEAR + 14], 0.0, atol=1e-3)
    assert np.linalg.norm(landscape[0, PER_YEAR + 14 :], axis=1).min() > 1.0  # the drought
    series = region_series(cubes[1:], box, site[box], scale, False)
    before = region_series(cubes[:1], box, site[box], scale, False)
    own = region_evidence(series, before, PER_YEAR, PER_YEAR + 23, 15, use_anomaly=True)
    assert own.composite == PER_YEAR + 14  # the drought's start, without the landscape
    assert evidence[0].composite == PER_YEAR + 18


# --- the second year confirms or withdraws the previous year's changes -----------------------------


def _changes(previous: np.ndarray, changes: list[tuple[np.ndarray, int, int]]) -> YearResult:
    """A year's result: ``(where, new class, day)`` changes on the ``previous`` map."""
    to_class, days = previous.copy(), np.zeros(previous.shape, np.int32)
    for where, new, day in changes:
        to_class[where], days[where] = new, day
    changed = days > 0
    return YearResult(
        to_class.copy(), changed, previous, to_class, days, np.where(changed, 5, -1).astype(np.int32)
    )


def test_a_change_turned_back_within_a_year_is_withdrawn_and_a_later_one_is_not() -> None:
    from eo_tasks.maps.annual_maps import without
    from eo_tasks.maps.confirmation import DAYS_TO_CONFIRM, LastChanges, reverted_changes, withdrawn

    grass, field, lake = np.full((8, 8), 3, np.uint8), np.zeros((8, 8), bool), np.zeros((8, 8), bool)
    field[:4, :4] = True  # a meadow read as a field in October
    lake[5:, 5:] = True  # a meadow flooded
    last_year = _changes(grass, [(field, 2, 19000), (lake, 8, 19100)])
    last = LastChanges.from_result(last_year)
    numbers = {"field": int(last.regions[0, 0]), "lake": int(last.regions[6, 6])}
    assert sorted(numbers.values()) == [1, 2] and not last.regions[~(field | lake)].any()

    spring = _changes(last_year.classes, [(field | lake, 3, 19200)])  # both meadow again in spring
    assert reverted_changes(last, spring) == sorted(numbers.values())
    later = _changes(last_year.classes, [(field, 3, 19200), (lake, 3, 19100 + DAYS_TO_CONFIRM + 1)])
    assert reverted_changes(last, later) == [numbers["field"]]  # the lake lasted over a year
    part = field.copy()
    part[:3] = False
    assert reverted_changes(last, _changes(last_year.classes, [(part | lake, 3, 19200)])) == [numbers["lake"]]

    assert (withdrawn(last_year.classes, last, [numbers["field"]]) == np.where(lake, 8, 3)).all()
    undone = without(last_year, field)
    assert not undone.changed[field].any() and (undone.classes[field] == 3).all()
    assert (undone.change_days[field] == 0).all() and undone.changed[lake].all()


def test_changes_into_tree_cover_are_dropped_with_what_they_leave_under_ath() -> None:
    from eo_tasks.maps.annual_maps import without_tree_cover_gains

    grass = np.full((12, 12), GRASS, np.uint8)
    meadow_read_as_trees, its_edge, quarry = (np.zeros((12, 12), bool) for _ in range(3))
    meadow_read_as_trees[:5, :5] = True
    its_edge[5, :3] = True  # read as cropland, joined to the trees' region only
    quarry[8:, 8:] = True
    year = _changes(
        grass, [(meadow_read_as_trees, TREE, 19000), (its_edge, CROP, 19000), (quarry, BARE, 19100)]
    )
    kept = without_tree_cover_gains(year, ath=10)
    assert kept.changed.tolist() == quarry.tolist()
    assert (kept.classes == np.where(quarry, BARE, GRASS)).all() and (kept.to_class[~quarry] == GRASS).all()
    assert without_tree_cover_gains(year, ath=3).changed.tolist() == (quarry | its_edge).tolist()


def test_without_a_year_before_the_window_its_first_composites_are_the_usual_variation() -> None:
    # The series' first year has no year before. Cleared at composite 31 of its second year, built
    # on from 36: the window's first composites (24, 25) are the ground as it was, so the clearing
    # dates it; a field's anomaly moves with each year's crop, so for one the two-level fit does.
    series = _noisy(2)
    series[31:, 0] -= 1.2
    series[36:, 0] -= 3.0
    unknown = np.full((PER_YEAR, 1), np.nan)
    assert first_lasting_departure(series, unknown, PER_YEAR, 24, 45, 15, usual_in_window=True) == 31
    found = region_evidence(series, unknown, PER_YEAR, 38, 15, use_anomaly=True)
    assert found.anomaly_dated and found.composite == 31
    assert region_evidence(series, unknown, PER_YEAR, 38, 15, use_anomaly=True, field=True).composite == 36


def test_a_first_year_change_the_anomaly_cannot_date_is_dated_against_the_neighbours() -> None:
    # Cleared at composite 21 of the series' first year, whose year before is unknown; its labels
    # flipped late (window 22-36). The anomaly, known from 24, is high from its first composite
    # (the change came before it was known), and a snowfall at 30-31 is the features' largest jump.
    rng = np.random.default_rng(4)
    conifers = rng.normal(0, 0.05, (30, 2 * PER_YEAR, 1))
    conifers[:, 30:32] += 4.0
    series = np.median(conifers, axis=0) + rng.normal(0, 0.05, (2 * PER_YEAR, 1))
    series[21:] -= 3.0
    unknown = np.full((PER_YEAR, 1), np.nan)
    assert region_evidence(series, unknown, PER_YEAR, 36, 15, True).composite == 32  # the snow melting
    found = region_evidence(series, unknown, PER_YEAR, 36, 15, True, None, conifers)
    assert found.anomaly_dated and found.composite == 22  # the window's first composite
