"""SAFE (DHuS) L2A products into cubes: a small product in the real folder layout and MTD schema.

The products are written by tests/fixtures/safe_product.py: ESA's real ``MTD_MSIL2A.xml``
(baseline 05.09, ``BOA_ADD_OFFSET`` −1000) renamed to the test tile, bands as lossless JP2 at the
paths its ``IMAGE_FILE`` entries name.
"""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from eo_tasks.core.calendar import Calendar
from eo_tasks.core.grid import Block, GridSpec
from eo_tasks.core.scenes import SceneInput
from eo_tasks.preprocess.datacube import CubeSpec, build_cube
from eo_tasks.preprocess.safe import SafeProductError, extract_safe
from eo_tasks.preprocess.scene_prep import read_block
from tests.fixtures.safe_product import cog_scene, safe_zip, sample_dns

GRID = GridSpec(epsg=32632, bounds=(600000.0, 4999360.0, 600640.0, 5000000.0))


@pytest.fixture(scope="module")
def jp2_driver() -> None:
    from osgeo import gdal

    if gdal.GetDriverByName("JP2OpenJPEG") is None:
        pytest.skip("GDAL has no JP2OpenJPEG driver")


def test_safe_scene_reads_like_the_same_data_as_cogs(jp2_driver: None, tmp_path: Path) -> None:
    when = dt.datetime(2022, 6, 5, 10, 20, tzinfo=dt.UTC)
    dns = sample_dns(1)
    cog = cog_scene(tmp_path / "cog", "cog", when, dns)
    zip_path = safe_zip(tmp_path / "safe", dns, when=when)
    safe = SceneInput("safe", "sentinel-2-l2a", when, {"product": str(zip_path)}, {"format": "SAFE"})
    block = Block(0, 0, 64, 64)
    a, b = read_block(cog, GRID, block), read_block(safe, GRID, block)
    assert np.isfinite(a).all() and np.abs(a - b).max() <= 1e-4
    # the offset came from MTD_MSIL2A.xml: DN 1100 is reflectance 0.01
    assert a.min() >= 0.01 - 1e-6 and a.max() < 0.4


def test_safe_scene_ends_up_in_a_cube_next_to_cog_scenes(jp2_driver: None, tmp_path: Path) -> None:
    d1, d2 = dt.datetime(2022, 3, 1, 10, tzinfo=dt.UTC), dt.datetime(2022, 9, 1, 10, tzinfo=dt.UTC)
    dn1, dn2 = sample_dns(1), sample_dns(2)
    spec = CubeSpec(aoi="t", grid=GRID, year=2022, calendar=Calendar(6), block_size=32)
    cogs = [cog_scene(tmp_path, "c1", d1, dn1), cog_scene(tmp_path, "c2", d2, dn2)]
    safe = SceneInput(
        "s1",
        "sentinel-2-l2a",
        d1,
        {"product": str(safe_zip(tmp_path / "s", dn1, when=d1))},
        {"format": "SAFE"},
    )
    ref = build_cube(cogs, spec, tmp_path / "ref.h5")
    mixed = build_cube([safe, cogs[1]], spec, tmp_path / "mixed.h5")
    assert ref.scenes_used == mixed.scenes_used == 2 and mixed.scenes_skipped == {}
    with h5py.File(tmp_path / "ref.h5") as r, h5py.File(tmp_path / "mixed.h5") as m:
        scale = float(r["reflectance"].attrs["scale_factor"])
        diff = np.abs(r["reflectance"][:].astype(np.float64) - m["reflectance"][:]) * scale
        assert diff.max() <= 1e-4
        assert (r["valid"][:] == m["valid"][:]).all() and r["valid"][:].any()


def test_zip_member_outside_the_product_is_refused(tmp_path: Path) -> None:
    product = tmp_path / "evil.zip"
    with zipfile.ZipFile(product, "w") as z:
        z.writestr("S2A_MSIL2A_X.SAFE/MTD_MSIL2A.xml", "<x/>")
        z.writestr("../../escaped.txt", "pwned")
    with pytest.raises(SafeProductError, match="outside the product folder"):
        extract_safe(product, tmp_path / "out" / "unpacked")
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "out" / "unpacked").exists()
