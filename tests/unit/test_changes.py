"""Label-sequence analysis on hand-made sequences with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from eo_tasks.core.aoi_sections import ChangeParams
from eo_tasks.core.errors import ConfigError
from eo_tasks.core.grid import GridSpec
from eo_tasks.maps.changes import (
    NO_CHANGE,
    analyse_sequences,
    drop_small_regions,
    embed_changes,
    median_filter,
    step_response,
)
from eo_tasks.maps.outputs import change_regions, class_areas

GRASS, CROP, TREE, BARE, SNOW, WATER = 3, 2, 4, 6, 7, 8
STEPS = 72  # three years of 24 composites
PARAMS = ChangeParams(rules="published")  # w = 15 (half = 8), p = 5, ath = 100


def _sequence(base: int, spans: list[tuple[int, int, int]]) -> np.ndarray:
    seq = np.full(STEPS, base)
    for start, stop, label in spans:
        seq[start:stop] = label
    return seq


def _analyse(*sequences: np.ndarray, initial: list[int]) -> object:
    return analyse_sequences(np.stack(sequences, axis=1), np.array(initial), PARAMS)


def test_a_permanent_change_late_in_a_year_is_found_and_dated() -> None:
    # Forest cleared at step 44 (late in the second year: steps 24..47), bare ever after.
    result = _analyse(_sequence(TREE, [(44, STEPS, BARE)]), initial=[TREE])
    assert result.changed.tolist() == [True]
    assert abs(int(result.step[0]) - 44) <= 1
    # the window at position k ends at composite k + 14 and flips half a window (7) after the ground
    assert int(result.date_composite[0]) == int(result.step[0]) + PARAMS.window - 1 - PARAMS.window // 2
    assert (int(result.from_class[0]), int(result.to_class[0])) == (TREE, BARE)


def test_noise_around_a_permanent_change_does_not_hide_it() -> None:
    seq = _sequence(TREE, [(30, STEPS, WATER)])
    seq[[10, 40, 41, 60]] = [GRASS, TREE, CROP, TREE]  # isolated misclassifications
    result = _analyse(seq, initial=[TREE])
    assert result.changed.tolist() == [True] and abs(int(result.step[0]) - 30) <= 1


def test_seasonal_snow_is_not_a_change() -> None:
    # The last winter lasts to the end of the series and longer than half a window: only the
    # "returns to its initial label more than once" rule tells it from a change to snow.
    winters = [(0, 5, SNOW), (20, 30, SNOW), (44, 54, SNOW), (62, STEPS, SNOW)]
    result = _analyse(_sequence(GRASS, winters), initial=[GRASS])
    assert result.changed.tolist() == [False]
    assert result.step.tolist() == [NO_CHANGE]


def test_crop_cycles_are_not_a_change() -> None:
    harvests = [(8, 16, BARE), (32, 40, BARE), (56, STEPS, BARE)]  # the series ends after a harvest
    result = _analyse(_sequence(CROP, harvests), initial=[CROP])
    assert result.changed.tolist() == [False]


def test_a_flicker_shorter_than_half_a_window_is_not_a_change() -> None:
    result = _analyse(_sequence(GRASS, [(30, 30 + PARAMS.half - 2, WATER)]), initial=[GRASS])
    assert result.changed.tolist() == [False]


def test_a_change_at_the_start_of_the_series_is_dropped() -> None:
    from_start = _sequence(BARE, [])  # the initial map disagrees with everything that follows
    almost = _sequence(TREE, [(3, STEPS, BARE)])
    result = _analyse(from_start, almost, initial=[TREE, TREE])
    assert result.changed.tolist() == [False, False]  # (platform rules: test_change_rules.py)


def test_a_change_that_does_not_last_to_the_end_is_not_permanent() -> None:
    flood = _sequence(CROP, [(30, 45, WATER)])  # 15 steps under water, then fields again
    result = _analyse(flood, initial=[CROP])
    assert result.changed.tolist() == [False]


def test_many_pixels_at_once_match_one_at_a_time() -> None:
    rng = np.random.default_rng(0)
    sequences = [_sequence(TREE, [(int(s), STEPS, BARE)]) for s in rng.integers(10, 60, size=20)]
    together = _analyse(*sequences, initial=[TREE] * 20)
    for i, seq in enumerate(sequences):
        alone = _analyse(seq, initial=[TREE])
        assert together.step[i] == alone.step[0] and together.changed[i] == alone.changed[0]


def test_regions_below_ath_are_dropped_and_at_ath_kept() -> None:
    mask = np.zeros((40, 40), dtype=bool)
    mask[2:11, 2:13] = True  # 9 x 11 = 99 pixels
    mask[20:30, 20:30] = True  # 100 pixels
    kept = drop_small_regions(mask, ath=100)
    assert kept[2:11, 2:13].sum() == 0
    assert kept[20:30, 20:30].all() and kept.sum() == 100
    diagonal = np.eye(100, dtype=bool)  # 8-connected: one region of 100
    assert drop_small_regions(diagonal, ath=100).sum() == 100


def test_changes_are_embedded_from_their_date_on() -> None:
    result = _analyse(_sequence(TREE, [(44, STEPS, BARE)]), _sequence(GRASS, []), initial=[TREE, GRASS])
    kept = result.changed.copy()
    date = int(result.date_composite[0])
    assert embed_changes(np.array([TREE, GRASS]), result, kept, last_composite=date - 1).tolist() == [
        TREE,
        GRASS,
    ]
    assert embed_changes(np.array([TREE, GRASS]), result, kept, last_composite=date).tolist() == [BARE, GRASS]
    assert embed_changes(np.array([TREE, GRASS]), result, ~kept, last_composite=STEPS + 14).tolist() == [
        TREE,
        GRASS,
    ]


def test_median_filter_and_step_response() -> None:
    seq = np.array([1, 1, 9, 1, 1, 2, 2, 2, 2, 2])[:, None]
    assert median_filter(seq, 3)[:, 0].tolist() == [1, 1, 1, 1, 1, 2, 2, 2, 2, 2]
    response = step_response(np.array([0, 0, 0, 0, 1, 1, 1, 1], dtype=bool)[:, None], 2)[:, 0]
    assert int(np.argmax(response)) == 4 and response.max() == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("data", "message"),
    [({"window": 1}, "window"), ({"median": 4}, "median"), ({"ath": 0}, "ath"), ({"size": 3}, "unknown")],
)
def test_invalid_parameters(data: dict[str, int], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ChangeParams.from_dict(data)


@pytest.mark.parametrize("block_px", [1, 5, 16, 64])
def test_regions_crossing_block_edges_are_stitched_before_the_size_filter(block_px: int) -> None:
    from scipy import ndimage

    rng = np.random.default_rng(block_px)
    changed = ndimage.binary_dilation(rng.random((60, 75)) < 0.04, iterations=1)  # blobs of all sizes
    changed[10, :] = True  # a line across every block edge: one region only if stitched
    regions, n = ndimage.label(changed, structure=np.ones((3, 3), bool))
    sizes = np.bincount(regions.ravel())
    for ath in (2, 20, 200):
        keep = sizes >= ath
        keep[0] = False
        np.testing.assert_array_equal(drop_small_regions(changed, ath, block_px), keep[regions])
    assert n > 20 and 1 < (sizes[1:] >= 20).sum() < n  # the filter both keeps and drops regions


def _old_change_regions(kept: np.ndarray, before: np.ndarray, after: np.ndarray, days: np.ndarray) -> list:
    """The previous implementation (one whole-AOI scan per region, pieces unioned one by one)."""
    from osgeo import gdal, ogr
    from scipy import ndimage

    regions, _ = ndimage.label(kept, structure=np.ones((3, 3), dtype=bool))
    mem = gdal.GetDriverByName("MEM").Create("", kept.shape[1], kept.shape[0], 1, gdal.GDT_Int32)
    mem.SetGeoTransform(GRID.geotransform)
    mem.GetRasterBand(1).WriteArray(regions.astype(np.int32))
    source = ogr.GetDriverByName("Memory").CreateDataSource("")
    layer = source.CreateLayer("regions")
    layer.CreateField(ogr.FieldDefn("region", ogr.OFTInteger))
    band = mem.GetRasterBand(1)
    gdal.Polygonize(band, band, layer, 0, ["8CONNECTED=8"])
    geometries: dict = {}
    for feature in layer:
        region, geom = feature.GetField("region"), feature.GetGeometryRef().Clone()
        geometries[region] = geometries[region].Union(geom) if region in geometries else geom
    out = []
    for region, geom in sorted(geometries.items()):
        where = regions == region
        out.append(
            (
                geom,
                int(np.bincount(before[where]).argmax()),
                int(np.bincount(after[where]).argmax()),
                int(np.median(days[where])),
                float(where.sum() * 100.0),
            )
        )
    return out


GRID = GridSpec(epsg=32632, bounds=(600000.0, 5100000.0, 601200.0, 5101000.0), resolution=10.0)


def test_change_regions_in_one_pass_equal_the_per_region_scans_and_are_valid() -> None:
    import datetime as dt

    from osgeo import ogr
    from scipy import ndimage

    rng = np.random.default_rng(0)
    kept = ndimage.binary_dilation(rng.random((100, 120)) < 0.03)  # hundreds of regions, corner contacts
    kept[50, 10:110:2] = True  # pixels touching only at corners: one 8-connected region
    kept[51, 11:111:2] = True
    before = rng.choice([TREE, GRASS], kept.shape).astype(np.uint8)
    after = rng.choice([BARE, WATER, CROP], kept.shape).astype(np.uint8)
    days = rng.integers(18000, 19000, kept.shape).astype(np.int32)
    new = change_regions(kept, before, after, days, GRID)
    old = _old_change_regions(kept, before, after, days)
    assert len(new) == len(old) > 150
    for region, (geom, from_class, to_class, day, area) in zip(new, old, strict=True):
        shape = ogr.CreateGeometryFromWkt(region.wkt)
        assert shape.GetGeometryName() == "MULTIPOLYGON" and shape.IsValid()
        assert shape.GetArea() == pytest.approx(area) == pytest.approx(geom.GetArea())
        assert shape.SymDifference(geom).GetArea() == pytest.approx(0.0, abs=1e-6)
        assert (region.from_class, region.to_class, region.area_m2) == (from_class, to_class, area)
        assert region.change_date == dt.date(1970, 1, 1) + dt.timedelta(days=day)
    assert sum(not geom.IsValid() for geom, *_ in old) > 0  # the old polygons were not all valid


def test_class_areas_count_every_pixel_once() -> None:
    classes = np.random.default_rng(1).choice([0, GRASS, TREE, BARE], (700, 333)).astype(np.uint8)
    areas = class_areas(classes, 10.0, pixels_at_a_time=1000)
    counts = np.bincount(classes.ravel(), minlength=10)
    assert areas["tree_cover"] == pytest.approx(counts[TREE] * 100 / 1e4)
    assert sum(areas.values()) == pytest.approx((classes != 0).sum() * 100 / 1e4)


@pytest.mark.parametrize("length", [1, 3, 5, 7, 4])
def test_the_median_filter_and_step_response_equal_their_textbook_forms(length: int) -> None:
    rng = np.random.default_rng(length)
    labels = rng.integers(0, 10, (40, 500)).astype(np.uint8)
    pad = length // 2
    padded = np.concatenate([np.repeat(labels[:1], pad, 0), labels, np.repeat(labels[-1:], pad, 0)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, length, axis=0)
    np.testing.assert_array_equal(median_filter(labels, length), np.median(windows, -1).astype(np.uint8))
    differs, half = labels > 4, 8
    x = np.concatenate([np.repeat(differs[:1], half, 0), differs, np.repeat(differs[-1:], half, 0)])
    x = x.astype(np.float32)
    means = [(x[i + half : i + 2 * half].sum(0) - x[i : i + half].sum(0)) / half for i in range(40)]
    np.testing.assert_allclose(step_response(differs, half), np.stack(means), rtol=0, atol=1e-6)
