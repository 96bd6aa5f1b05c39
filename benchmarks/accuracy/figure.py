"""A picture of the suite: where each scenario's changes were found and dated, missed, or invented.

One tile per scenario, in the results file's order, five to a row: the AOI at one image pixel per
ground pixel. Truly changed pixels are dark green where found and dated within one composite,
light green where found but dated further off, red where missed; false changes are blue. Changes
that belong to the first map (dated in the first half of the first year, not scored) are grey, as
is the unchanged ground (lighter). Drawn with the platform's quicklook writer (GDAL's PNG driver).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks.accuracy.chain import ScenarioRun

COLOURS = {
    "unchanged": (235, 235, 235),
    "first_map": (170, 170, 170),
    "dated": (0, 130, 0),
    "found": (150, 215, 70),
    "missed": (215, 45, 30),
    "false": (40, 80, 220),
}
PER_ROW, GAP = 5, 8


def change_tile(run: ScenarioRun, maps: Path) -> np.ndarray:
    """One scenario's ``(rows, cols, 3)`` tile from its truth and the change rasters in ``maps``."""
    from eo_tasks.core.calendar import Calendar
    from eo_tasks.core.raster import read_raster
    from eo_tasks.maps.evaluate import composite_index, first_detection, in_initial_map

    truth = read_raster(run.archive / "truth" / "change_date.tif").astype(np.int64)
    found = np.zeros(truth.shape, np.int64)
    for year in run.years[1:]:
        found = first_detection(found, read_raster(maps / f"changes_{year}.tif").astype(np.int64))
    calendar, first = Calendar(run.aoi().composites_per_year), run.years[0]
    truth_at = composite_index(truth, first, calendar)
    return colour_changes(
        truth_at, composite_index(found, first, calendar), in_initial_map(truth_at, calendar)
    )


def colour_changes(truth_at: np.ndarray, found_at: np.ndarray, first_map: np.ndarray) -> np.ndarray:
    """The ``(rows, cols, 3)`` tile of true and reported change dates (composite indices, −1: none).

    Args:
        truth_at: The true change composite of each pixel.
        found_at: The reported one.
        first_map: The true changes that belong to the first map (not scored).
    """
    tile = np.empty((*truth_at.shape, 3), np.uint8)
    tile[:] = COLOURS["unchanged"]
    changed, reported = truth_at >= 0, found_at >= 0
    tile[changed & ~reported] = COLOURS["missed"]
    tile[changed & reported] = COLOURS["found"]
    tile[changed & reported & (np.abs(found_at - truth_at) <= 1)] = COLOURS["dated"]
    tile[~changed & reported] = COLOURS["false"]
    tile[first_map] = COLOURS["first_map"]
    return tile


def mosaic(tiles: Sequence[np.ndarray]) -> np.ndarray:
    """The tiles, :data:`PER_ROW` to a row with :data:`GAP` white pixels around each."""
    rows, cols = max(t.shape[0] for t in tiles), max(t.shape[1] for t in tiles)
    lines = -(-len(tiles) // PER_ROW)
    across = min(len(tiles), PER_ROW)
    image = np.full((lines * (rows + GAP) + GAP, across * (cols + GAP) + GAP, 3), 255, np.uint8)
    for k, tile in enumerate(tiles):
        top, left = GAP + (k // PER_ROW) * (rows + GAP), GAP + (k % PER_ROW) * (cols + GAP)
        image[top : top + tile.shape[0], left : left + tile.shape[1]] = tile
    return image


def write_suite_picture(runs: Sequence[ScenarioRun], path: Path) -> Path:
    """Writes the mosaic of the scenarios' platform-rule changes (``<run>/maps/platform``) to ``path``."""
    from eo_tasks.core.quicklook import write_rgb_png

    return write_rgb_png(mosaic([change_tile(run, run.root / "maps" / "platform") for run in runs]), path)
