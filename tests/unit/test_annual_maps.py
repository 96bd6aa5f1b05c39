"""A year's map from hand-made label sequences: embedded changes, dropped small regions, dates, blocks."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from eo_tasks.core.aoi_sections import ChangeParams
from eo_tasks.core.errors import IncompleteOutputError
from eo_tasks.core.grid import GridSpec
from eo_tasks.maps.annual_maps import LabelSeries, first_year_map, next_year_map, read_labels
from eo_tasks.maps.changes import analyse_sequences, embed_changes
from eo_tasks.maps.feature_breaks import break_composite
from eo_tasks.maps.infer import BLOCK_FILE, write_block
from eo_tasks.maps.outputs import MapPaths
from eo_tasks.maps.versions import apply_reviews, remove_old_versions, switch_current

GRASS, TREE, BARE, SNOW = 3, 4, 6, 7
W, N = 15, 24  # window, composites per year
PARAMS = ChangeParams(window=W, median=5, ath=100)
DATES = [dt.date(2021, 1, 8) + dt.timedelta(days=15 * k) for k in range(2 * N)]


def _series(labels: np.ndarray, annual: np.ndarray | None = None, block_px: int = 256) -> LabelSeries:
    annual = labels[-1] if annual is None else annual
    return LabelSeries.from_array(labels, annual, DATES, W, "m", block_px)


def _two_years() -> tuple[np.ndarray, np.ndarray]:
    """A 30 x 30 forest; a 12 x 12 clearing (144 px) and a 9 x 11 one (99 px) from position 20 on; snow."""
    positions = 2 * N - W + 1
    previous = np.full((30, 30), TREE, dtype=np.uint8)
    labels = np.repeat(previous[None], positions, axis=0)
    labels[20:, 2:14, 2:14] = BARE
    labels[20:, 18:27, 18:29] = BARE
    labels[5:9, 0, :] = SNOW  # a winter of snow on the first row: seasonal, not a change
    labels[27:31, 0, :] = SNOW
    return labels, previous


def test_the_first_year_map_is_the_per_year_label_without_changes() -> None:
    annual = np.full((4, 4), GRASS, dtype=np.uint8)
    result = first_year_map(_series(np.full((10, 4, 4), TREE, np.uint8), annual))
    assert (result.classes == GRASS).all() and not result.changed.any()


def test_changes_are_embedded_into_the_previous_map_and_small_ones_dropped() -> None:
    labels, previous = _two_years()
    result = next_year_map(_series(labels), previous, PARAMS)
    expected = previous.copy()
    expected[2:14, 2:14] = BARE  # 144 px >= ath; the 99 px clearing is dropped; snow is seasonal
    np.testing.assert_array_equal(result.classes, expected)
    np.testing.assert_array_equal(result.changed, expected != previous)
    assert (result.to_class[result.changed] == BARE).all() and (
        result.from_class[result.changed] == TREE
    ).all()
    # Dated half a window before the first window that shows it: its last composite minus w // 2.
    composite = 20 + W - 1 - W // 2
    assert set(result.change_composite[result.changed].tolist()) == {composite}
    assert set(result.change_days[result.changed].tolist()) == {(DATES[composite] - dt.date(1970, 1, 1)).days}
    assert (result.change_composite[~result.changed] == -1).all() and (
        result.change_days[~result.changed] == 0
    ).all()


def test_the_analysis_refuses_labels_from_another_window() -> None:
    labels, previous = _two_years()
    with pytest.raises(ValueError, match="windows of 15"):
        next_year_map(_series(labels), previous, ChangeParams(window=9))


def test_a_break_in_a_seasonal_series_is_found_where_the_level_jumps() -> None:
    t = np.arange(48)
    season = 0.2 * np.sin(2 * np.pi * t / 24)[:, None]
    series = np.concatenate([season + 0.5, season - 0.1], axis=1)  # two features
    series[30:, 0] -= 0.6  # a cleared forest: the first feature drops at composite 30
    series[[12, 13, 31], :] = np.nan  # clouds
    assert break_composite(series, 22, 36) == 30
    assert break_composite(np.full((48, 2), np.nan), 22, 36) == 22  # nothing observed: the range's start


def test_blocks_are_mosaicked_and_a_missing_block_is_an_error(tmp_path: Path) -> None:
    grid = GridSpec(epsg=32632, bounds=(0.0, 0.0, 200.0, 300.0), resolution=10.0)  # 30 rows x 20 cols
    attrs = {"window": W, "model_id": "m", "composite_dates": '["2021-01-08", "2021-01-23"]'}
    for row0 in (0, 16):
        for col0 in (0, 16):
            rows, cols = min(16, 30 - row0), min(16, 20 - col0)
            block = {
                "labels": np.full((2, rows, cols), row0 + col0 + 1, np.uint8),
                "confidence": np.zeros((2, rows, cols), np.uint8),
                "annual": np.full((rows, cols), 9, np.uint8),
            }
            write_block(tmp_path / BLOCK_FILE.format(row0=row0, col0=col0), block, attrs)
    series = read_labels(tmp_path, grid, 16)
    labels = series.mosaic()
    assert labels.shape == (2, 30, 20) and labels[1, 29, 19] == 33 and labels[0, 0, 0] == 1
    assert (
        series.composite_dates == [dt.date(2021, 1, 8), dt.date(2021, 1, 23)] and (series.annual == 9).all()
    )
    (tmp_path / BLOCK_FILE.format(row0=16, col0=0)).unlink()
    with pytest.raises(IncompleteOutputError, match="block_r00016_c00000"):
        read_labels(tmp_path, grid, 16)


def test_the_pixels_follow_the_reviews() -> None:
    grid = GridSpec(epsg=32632, bounds=(600000.0, 5099700.0, 600300.0, 5100000.0), resolution=10.0)  # 30 x 30
    classes = np.full(grid.shape, TREE, np.uint8)
    classes[0:10, 0:10] = BARE  # found in 2022's run: a clearing that a reviewer rejected
    classes[20:30, 20:30] = GRASS  # an unreviewed change

    def square(row0: int, col0: int) -> str:
        x0, y1 = 600000 + 10 * col0, 5100000 - 10 * row0
        return f"POLYGON(({x0} {y1 - 100},{x0 + 100} {y1 - 100},{x0 + 100} {y1},{x0} {y1},{x0} {y1 - 100}))"

    def change(
        status: str, wkt: str, year: int, date: dt.date, new_class: int | None = None
    ) -> dict[str, Any]:
        return {
            "wkt": wkt,
            "year": year,
            "status": status,
            "from_class": TREE,
            "to_class": BARE,
            "new_class": new_class,
            "change_date": date,
        }

    reviewed = [
        change("rejected", square(0, 0), 2022, dt.date(2022, 5, 1)),
        change("approved", square(10, 10), 2023, dt.date(2022, 11, 1)),  # found in 2023, dated 2022
        change("approved", square(20, 0), 2023, dt.date(2023, 3, 1), new_class=SNOW),  # not in 2022 yet
    ]
    out = apply_reviews(classes, reviewed, 2022, grid)
    expected = np.full(grid.shape, TREE, np.uint8)
    expected[10:20, 10:20] = BARE  # carried back into 2022
    expected[20:30, 20:30] = GRASS
    np.testing.assert_array_equal(out, expected)
    assert (classes[0:10, 0:10] == BARE).all()  # the input is left alone
    found_2023 = out.copy()
    found_2023[20:30, 0:10] = BARE  # 2023's run detects the third change: its relabel holds
    assert (apply_reviews(found_2023, reviewed, 2023, grid)[20:30, 0:10] == SNOW).all()


def test_versions_are_switched_by_pointer_and_old_ones_removed(tmp_path: Path) -> None:
    legacy = MapPaths.for_year(tmp_path, "alps", 2022)
    assert legacy.version == "" and legacy.classes == tmp_path / "maps/alps/2022/lc_alps_2022.tif"
    legacy.classes.parent.mkdir(parents=True)
    legacy.classes.write_bytes(b"old layout")
    first, second = MapPaths.new_version(tmp_path, "alps", 2022), MapPaths.new_version(tmp_path, "alps", 2022)
    assert first.version != second.version and first.version < second.version
    for paths in (first, second):
        paths.folder.mkdir()
        paths.classes.write_bytes(paths.version.encode())
    switch_current(second)
    current = MapPaths.for_year(tmp_path, "alps", 2022)
    assert current == second and current.classes.read_bytes() == second.version.encode()
    assert current.stac_item == tmp_path / "maps/alps/2022/alps_2022.json"  # the item stays in the year
    (current.labels / "k1").mkdir(parents=True)
    assert sorted(remove_old_versions(current)) == sorted([first.version, legacy.classes.name])
    assert sorted(p.name for p in current.root.iterdir()) == ["CURRENT", "labels", second.version]


def _whole_aoi(labels: np.ndarray, previous: np.ndarray, params: ChangeParams) -> dict[str, np.ndarray]:
    """The analysis over the whole AOI at once (the unstreamed reference)."""
    from scipy import ndimage

    n_pos, rows, cols = labels.shape
    result = analyse_sequences(labels.reshape(n_pos, -1), previous.ravel(), params)
    valid = (previous.ravel() != 0) & (result.to_class != 0)
    regions, _ = ndimage.label((result.changed & valid).reshape(rows, cols), structure=np.ones((3, 3), bool))
    sizes = np.bincount(regions.ravel())
    keep = sizes >= params.ath
    keep[0] = False
    changed = keep[regions]
    last = len(DATES) - 1
    classes = embed_changes(previous.ravel(), result, changed.ravel(), last).reshape(rows, cols)
    composite = np.where(changed.ravel(), result.date_composite, -1).reshape(rows, cols)
    return {"classes": classes, "changed": changed, "change_composite": composite}


def _simulated(seed: int, rows: int = 70, cols: int = 90) -> tuple[np.ndarray, np.ndarray]:
    """Demo-like sequences: class patches, clearings of all sizes anywhere (across block edges),
    seasonal snow, isolated misclassifications and no-data pixels."""
    rng = np.random.default_rng(seed)
    positions = 2 * N - W + 1
    previous = np.repeat(np.repeat(rng.choice([GRASS, TREE, BARE], (8, 10)), 9, 0), 9, 1)[:rows, :cols]
    previous = previous.astype(np.uint8)
    previous[rng.random((rows, cols)) < 0.01] = 0
    labels = np.repeat(previous[None], positions, axis=0)
    for _ in range(40):
        r, c = rng.integers(0, rows), rng.integers(0, cols)
        h, w = rng.integers(2, 25, 2)
        start = rng.integers(3, positions - 8)
        labels[start:, r : r + h, c : c + w] = rng.choice([BARE, GRASS, 8])
    labels[5:9, rng.integers(0, rows, 5)] = SNOW
    noise = rng.random(labels.shape) < 0.05
    labels[noise] = rng.choice([GRASS, TREE, BARE], noise.sum())
    return labels, previous


@pytest.mark.parametrize("block_px", [7, 16, 33, 256])
def test_the_streamed_analysis_equals_the_whole_aoi_one(block_px: int) -> None:
    params = ChangeParams(window=W, median=5, ath=60)
    for seed in (1, 2):
        labels, previous = _simulated(seed)
        expected = _whole_aoi(labels, previous, params)
        result = next_year_map(_series(labels, block_px=block_px), previous, params)
        assert expected["changed"].sum() > 100  # regions kept, some crossing block edges
        for name, array in expected.items():
            np.testing.assert_array_equal(getattr(result, name), array, err_msg=name)
