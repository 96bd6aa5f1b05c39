"""Masks, scaling, harmonization, warping, compositing and gap filling on small known arrays."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, osr

from eo_tasks.core.calendar import Calendar
from eo_tasks.core.grid import Block, GridSpec, blocks
from eo_tasks.core.indices import spectral_indices
from eo_tasks.preprocess.composite import composite, fill_gaps
from eo_tasks.preprocess.harmonize import HLS_MSI_TO_OLI, msi_to_oli, oli_to_msi
from eo_tasks.preprocess.scene_prep import (
    landsat_reflectance,
    qa_pixel_valid,
    s2_reflectance,
    scl_valid,
    warp_band,
)


def test_scl_classes_bit_by_bit() -> None:
    scl = np.arange(12)
    expected = {0: False, 1: False, 2: True, 3: False, 4: True, 5: True, 6: True, 7: True, 8: False, 9: False}
    expected |= {10: False, 11: True}  # cirrus invalid; snow stays valid (a class, not a mask)
    assert dict(zip(scl.tolist(), scl_valid(scl).tolist(), strict=True)) == expected


@pytest.mark.parametrize(
    ("bit", "valid"),
    [(0, False), (1, False), (2, False), (3, False), (4, False), (5, True), (6, True), (7, True)],
)
def test_qa_pixel_bits(bit: int, valid: bool) -> None:
    assert bool(qa_pixel_valid(np.array([1 << bit], dtype=np.uint16))[0]) is valid


def test_qa_pixel_combinations() -> None:
    clear_land, clear_water, snow = 0b1000000, 0b11000000, 0b1100000
    cloud_and_clear_bit_wrongly_set = 0b1001000
    values = np.array([clear_land, clear_water, snow, cloud_and_clear_bit_wrongly_set, 1], dtype=np.uint16)
    assert qa_pixel_valid(values).tolist() == [True, True, True, False, False]


def test_s2_scaling_with_and_without_offset() -> None:
    dn = np.array([0, 1000, 1500, 11000], dtype=np.uint16)
    np.testing.assert_allclose(s2_reflectance(dn, 0), [np.nan, 0.1, 0.15, 1.1], rtol=1e-6)
    np.testing.assert_allclose(s2_reflectance(dn, 1000), [np.nan, 0.0, 0.05, 1.0], rtol=1e-6, atol=1e-7)


def test_landsat_scaling() -> None:
    dn = np.array([0, 7273, 10909], dtype=np.uint16)  # 7273 -> 0.0000075, 10909 -> 0.1
    np.testing.assert_allclose(landsat_reflectance(dn), [np.nan, 7273 * 2.75e-5 - 0.2, 0.0999975], atol=1e-6)


def test_harmonization_uses_hls_coefficients_and_inverts() -> None:
    oli = np.array([0.05, 0.3], dtype=np.float32)
    slope, offset = HLS_MSI_TO_OLI["red"]
    np.testing.assert_allclose(oli_to_msi(oli, "red"), (oli - offset) / slope, rtol=1e-6)
    np.testing.assert_allclose(msi_to_oli(oli_to_msi(oli, "swir22"), "swir22"), oli, rtol=1e-6)
    assert HLS_MSI_TO_OLI["blue"] == (0.9778, -0.004)


def test_calendar_is_the_same_every_year() -> None:
    cal = Calendar(24)
    assert cal.window_of(dt.date(2021, 1, 1)) == 0
    assert cal.window_of(dt.date(2021, 12, 31)) == 23
    assert cal.window_of(dt.date(2020, 12, 31)) == 23  # day 366 of a leap year
    assert [d.strftime("%m-%d") for d in cal.centers(2021)] == [
        d.strftime("%m-%d") for d in cal.centers(2022)
    ]
    assert all(cal.window_of(d) == k for k, d in enumerate(cal.centers(2023)))


def test_composite_takes_the_median_of_clear_observations() -> None:
    obs = np.array([[[0.1]], [[0.3]], [[np.nan]], [[0.2]], [[0.9]]], dtype=np.float32)[..., None]  # (5,1,1,1)
    comp, observed = composite(obs[:, 0], windows=[0, 0, 0, 1, 3], n_windows=4)
    np.testing.assert_allclose(comp[:, 0, 0], [0.2, 0.2, np.nan, 0.9])
    assert observed[:, 0].tolist() == [True, True, False, True]


def test_fill_gaps_interpolates_linearly_and_extends_the_ends() -> None:
    series = np.array([np.nan, 1.0, np.nan, np.nan, 4.0, np.nan], dtype=np.float32)
    filled, was_filled = fill_gaps(series)
    np.testing.assert_allclose(filled, [1.0, 1.0, 2.0, 3.0, 4.0, 4.0])
    assert was_filled.tolist() == [True, False, True, True, False, True]


def test_fill_gaps_leaves_never_observed_pixels_empty_and_works_per_pixel() -> None:
    series = np.array([[np.nan, 0.0], [np.nan, np.nan], [np.nan, 1.0]], dtype=np.float32)  # (time, pixel)
    filled, was_filled = fill_gaps(series)
    assert np.isnan(filled[:, 0]).all() and not was_filled[:, 0].any()
    np.testing.assert_allclose(filled[:, 1], [0.0, 0.5, 1.0])


def test_indices_on_known_spectra() -> None:
    bands = ("blue", "green", "red", "nir", "swir16")
    vegetation = np.array([0.03, 0.06, 0.04, 0.40, 0.20], dtype=np.float32)
    water = np.array([0.06, 0.08, 0.05, 0.02, 0.01], dtype=np.float32)
    snow = np.array([0.90, 0.90, 0.88, 0.85, 0.10], dtype=np.float32)
    idx = spectral_indices(np.stack([vegetation, water, snow]), bands)
    assert idx["ndvi"][0] == pytest.approx(0.36 / 0.44, rel=1e-5)
    assert idx["ndwi"][1] > 0 > idx["ndwi"][0]
    assert idx["ndsi"][2] > 0.7 > idx["ndsi"][0]
    assert idx["evi"].min() >= -1 and idx["evi"].max() <= 1


def _write_geotiff(path: Path, array: np.ndarray, epsg: int, geotransform: tuple[float, ...]) -> None:
    ds = gdal.GetDriverByName("GTiff").Create(str(path), array.shape[1], array.shape[0], 1, gdal.GDT_UInt16)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    ds.SetProjection(srs.ExportToWkt())
    ds.SetGeoTransform(geotransform)
    ds.GetRasterBand(1).WriteArray(array)
    ds.FlushCache()


def test_a_pixel_of_known_coordinates_lands_where_it_should(tmp_path: Path) -> None:
    # AOI grid in UTM 32N; a source raster in UTM 33N (30 m) with one bright pixel at a known place.
    grid = GridSpec(epsg=32632, bounds=(690000.0, 5000000.0, 692000.0, 5002000.0), resolution=10.0)
    target_x, target_y = 691005.0, 5001005.0  # centre of AOI pixel (row 99, col 100)
    to33 = osr.CoordinateTransformation(*(_srs(e) for e in (32632, 32633)))
    x33, y33, _ = to33.TransformPoint(target_x, target_y)
    origin_x, origin_y = x33 - 1515.0, y33 + 1515.0  # the target is the centre of source pixel (50, 50)
    source = np.full((100, 100), 100, dtype=np.uint16)
    source[50, 50] = 5000
    path = tmp_path / "l8_33n.tif"
    _write_geotiff(path, source, 32633, (origin_x, 30.0, 0, origin_y, 0, -30.0))

    block = Block(0, 0, *grid.shape)
    warped = warp_band(str(path), grid, block, "near")
    bright = np.argwhere(warped == 5000)
    assert len(bright) > 0
    rows, cols = bright[:, 0], bright[:, 1]
    # The 30 m pixel covers ~3x3 AOI pixels (rotated); the target pixel is among them.
    assert rows.min() <= 99 <= rows.max() and cols.min() <= 100 <= cols.max()
    assert rows.max() - rows.min() <= 4 and cols.max() - cols.min() <= 4


def _srs(epsg: int) -> osr.SpatialReference:
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


def test_blocks_tile_the_grid_exactly() -> None:
    grid = GridSpec(epsg=32632, bounds=(0.0, 0.0, 1000.0, 700.0), resolution=10.0)  # 70 x 100 pixels
    tiles = blocks(grid, 32)
    covered = np.zeros(grid.shape, dtype=int)
    for b in tiles:
        covered[b.row0 : b.row0 + b.rows, b.col0 : b.col0 + b.cols] += 1
    assert (covered == 1).all()
    assert tiles[0].bounds(grid) == (0.0, 380.0, 320.0, 700.0)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_nan_median_matches_numpy(n: int) -> None:
    from eo_tasks.core.stats import nan_median

    rng = np.random.default_rng(n)
    stack = rng.normal(size=(n, 50, 3)).astype(np.float32)
    stack[rng.random(stack.shape) < 0.4] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        expected = np.nanmedian(stack, axis=0)
    np.testing.assert_allclose(nan_median(stack), expected, rtol=1e-6, equal_nan=True)


def test_aligned_read_equals_a_warp(tmp_path: Path) -> None:
    from eo_tasks.preprocess.scene_prep import _open, _read_aligned

    grid = GridSpec(epsg=32632, bounds=(600000.0, 5000000.0, 600640.0, 5000640.0), resolution=10.0)
    rng = np.random.default_rng(0)
    for res, name in ((10.0, "b10.tif"), (20.0, "b20.tif")):
        size = int(800 / res)
        array = rng.integers(1, 10000, size=(size, size)).astype(np.uint16)
        path = tmp_path / name
        _write_geotiff(
            path, array, 32632, (599920.0, res, 0, 5000720.0, 0, -res)
        )  # 80 m margin around the grid
        for block in blocks(grid, 24):
            for alg in ("near", "bilinear"):
                fast = _read_aligned(*_open(str(path)), grid, block, alg)
                assert fast is not None
                warped = gdal.Warp(
                    "",
                    str(path),
                    format="MEM",
                    outputBounds=block.bounds(grid),
                    width=block.cols,
                    height=block.rows,
                    dstSRS="EPSG:32632",
                    resampleAlg=alg,
                )
                np.testing.assert_array_equal(fast, warped.ReadAsArray())
