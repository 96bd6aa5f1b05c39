"""The accuracy suite's picture (``benchmarks/accuracy/figure.py``) on hand-made dates."""

from __future__ import annotations

import numpy as np

from benchmarks.accuracy.figure import COLOURS, GAP, PER_ROW, colour_changes, mosaic


def test_each_pixel_is_coloured_by_what_became_of_its_change() -> None:
    truth = np.array([[-1, -1, 10, 10, 10, 3]])
    found = np.array([[-1, 12, 11, 14, -1, 3]])
    first_map = truth == 3
    tile = colour_changes(truth, found, first_map)
    expected = ["unchanged", "false", "dated", "found", "missed", "first_map"]
    assert [tuple(int(v) for v in px) for px in tile[0]] == [COLOURS[name] for name in expected]


def test_the_mosaic_puts_five_tiles_to_a_row_in_order() -> None:
    tiles = [np.full((4, 6, 3), k, np.uint8) for k in range(7)]
    image = mosaic(tiles)
    assert image.shape == (2 * (4 + GAP) + GAP, PER_ROW * (6 + GAP) + GAP, 3)
    second_row_second = image[GAP + 4 + GAP, GAP + 6 + GAP]
    assert int(second_row_second[0]) == PER_ROW + 1
    assert (image[:GAP] == 255).all() and (image[-GAP:, -(6 + GAP) :] == 255).all()  # gaps, an empty slot
