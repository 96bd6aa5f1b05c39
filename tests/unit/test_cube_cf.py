"""A datacube opens in xarray (h5netcdf) as a georeferenced CF dataset; the platform's reader still works."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from osgeo import osr

from eo_tasks.core.cube import Cube
from eo_tasks.preprocess.datacube import CubeSpec, build_cube
from tests.unit.test_datacube import _scenes, _spec


@pytest.fixture(scope="module")
def cube(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CubeSpec]:
    from eo_simulator import ScenarioConfig, simulate

    root = tmp_path_factory.mktemp("cf")
    simulate(
        ScenarioConfig.from_dict(
            {"seed": 7, "width": 40, "height": 32, "years": [2022], "s2_per_year": 4, "l8_per_year": 1}
        ),
        root / "archive",
    )
    spec = _spec(root / "archive")
    path = root / "c.h5"
    build_cube(_scenes(root / "archive"), spec, path)
    return path, spec


def test_xarray_opens_the_cube_with_coordinates_on_the_grid(cube: tuple[Path, CubeSpec]) -> None:
    path, spec = cube
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        refl = ds["reflectance"]
        assert refl.dims == ("time", "y", "x", "band")
        assert set(refl.coords) >= {"time", "y", "x", "band", "spatial_ref"}
        xmin, _, _, ymax = spec.grid.bounds
        res = spec.grid.resolution
        rows, cols = spec.grid.shape
        np.testing.assert_allclose(ds["x"].values, xmin + res * (np.arange(cols) + 0.5))
        np.testing.assert_allclose(ds["y"].values, ymax - res * (np.arange(rows) + 0.5))
        assert ds["x"].attrs["standard_name"] == "projection_x_coordinate" and ds["x"].attrs["units"] == "m"
        assert [str(t)[:10] for t in ds["time"].values.astype("datetime64[D]")] == [
            d.isoformat() for d in spec.calendar.centers(spec.year)
        ]
        assert list(ds["band"].values) == list(spec.bands)
        assert (
            refl.attrs["grid_mapping"] == "spatial_ref" and ds["valid"].attrs["grid_mapping"] == "spatial_ref"
        )
        mapping = ds["spatial_ref"].attrs
        srs = osr.SpatialReference(wkt=mapping["crs_wkt"])
        assert srs.GetAuthorityCode(None) == str(spec.grid.epsg)
        assert mapping["grid_mapping_name"] == "transverse_mercator"
        assert [float(v) for v in mapping["GeoTransform"].split()] == list(spec.grid.geotransform)
        # CF unpacking: float32 reflectance, never-observed pixels NaN, same values as the platform's reader
        assert refl.dtype == np.float32
        window = refl.isel(y=slice(0, 8), x=slice(0, 8)).values
        own, valid = Cube.open(path).read(slice(0, 8), slice(0, 8))
        np.testing.assert_allclose(window, own, rtol=1e-6, equal_nan=True)
        np.testing.assert_array_equal(
            ds["valid"].isel(y=slice(0, 8), x=slice(0, 8)).values.astype(bool), valid
        )
        # a point selection in map coordinates lands on the right pixel
        x, y = xmin + 3 * res + 1.0, ymax - 5 * res - 1.0
        picked = refl.sel(x=x, y=y, method="nearest").isel(time=0).values
        np.testing.assert_allclose(picked, own[0, 5, 3], rtol=1e-6, equal_nan=True)


def test_the_platform_reader_still_sees_its_layout(cube: tuple[Path, CubeSpec]) -> None:
    path, spec = cube
    opened = Cube.open(path)
    assert opened.dates == spec.calendar.centers(spec.year)
    assert opened.band_names == list(spec.bands)
    assert opened.epsg == spec.grid.epsg and opened.geotransform == tuple(spec.grid.geotransform)
    assert opened.shape == (len(opened.dates), *spec.grid.shape, len(spec.bands))


def test_gdal_netcdf_driver_places_the_cube_as_qgis_would(cube: tuple[Path, CubeSpec]) -> None:
    from osgeo import gdal

    path, spec = cube
    dataset = gdal.Open(f'NETCDF:"{path}":valid')  # QGIS opens netCDF/HDF5 variables through this driver
    assert dataset.GetDriver().ShortName == "netCDF"
    assert (dataset.RasterXSize, dataset.RasterYSize) == (spec.grid.shape[1], spec.grid.shape[0])
    np.testing.assert_allclose(dataset.GetGeoTransform(), spec.grid.geotransform)
    assert osr.SpatialReference(wkt=dataset.GetProjection()).GetAuthorityCode(None) == str(spec.grid.epsg)
