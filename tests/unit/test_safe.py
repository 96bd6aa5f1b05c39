"""SAFE (DHuS) L2A products into cubes: a small product in the real folder layout and MTD schema.

The product's ``MTD_MSIL2A.xml`` is ESA's real file (tests/fixtures/recorded/real, baseline
05.09, ``BOA_ADD_OFFSET`` −1000) with its granule renamed to the test tile; the bands are JP2
written by GDAL's JP2OpenJPEG driver (lossless) at the paths its ``IMAGE_FILE`` entries name.
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
from eo_tasks.preprocess.safe import SAFE_BANDS, SafeProductError, extract_safe
from eo_tasks.preprocess.scene_prep import read_block

MTD = Path(__file__).parents[1] / "fixtures" / "recorded" / "real" / "MTD_MSIL2A.xml"
GRID = GridSpec(epsg=32632, bounds=(600000.0, 4999360.0, 600640.0, 5000000.0))
REAL_GRANULE, REAL_STEM = "L2A_T01WCP_A041826_20230625T234624", "T01WCP_20230625T234621"


def _raster(path: Path, data: np.ndarray, resolution: int, driver: str) -> None:
    from osgeo import gdal, osr

    gdal.UseExceptions()
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32632)
    mem = gdal.GetDriverByName("MEM").Create("", data.shape[1], data.shape[0], 1, gdal.GDT_UInt16)
    mem.SetGeoTransform((600000, resolution, 0, 5000000, 0, -resolution))
    mem.SetProjection(srs.ExportToWkt())
    mem.GetRasterBand(1).WriteArray(data)
    options = ["REVERSIBLE=YES", "QUALITY=100"] if driver == "JP2OpenJPEG" else ["TILED=YES"]
    path.parent.mkdir(parents=True, exist_ok=True)
    gdal.GetDriverByName(driver).CreateCopy(str(path), mem, options=options)


def _dns(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for band, (_, res) in SAFE_BANDS.items():
        n = 640 // res
        out[band] = (
            np.full((n, n), 4, np.uint16) if band == "scl" else rng.integers(1100, 5000, (n, n), np.uint16)
        )
    return out


def _cog_scene(tmp: Path, sid: str, when: dt.datetime, dns: dict[str, np.ndarray]) -> SceneInput:
    files = {}
    for band, data in dns.items():
        _raster(tmp / sid / f"{band}.tif", data, SAFE_BANDS[band][1], "GTiff")
        files[band] = str(tmp / sid / f"{band}.tif")
    return SceneInput(sid, "sentinel-2-l2a", when, files, {"s2:processing_baseline": "05.09"})


def _safe_zip(tmp: Path, when: dt.datetime, dns: dict[str, np.ndarray]) -> Path:
    stamp = when.strftime("%Y%m%dT%H%M%S")
    name = f"S2A_MSIL2A_{stamp}_N0509_R022_T32TPS_{stamp}.SAFE"
    granule, stem = f"L2A_T32TPS_A041826_{stamp}", f"T32TPS_{stamp}"
    root = tmp / "build" / name
    root.mkdir(parents=True)
    mtd = MTD.read_text().replace(REAL_GRANULE, granule).replace(REAL_STEM, stem)
    (root / "MTD_MSIL2A.xml").write_text(
        mtd.replace("S2A_MSIL2A_20230625T234621_N0509_R073_T01WCP", name[:-5])
    )
    for band, (band_id, res) in SAFE_BANDS.items():
        jp2 = root / "GRANULE" / granule / "IMG_DATA" / f"R{res}m" / f"{stem}_{band_id}_{res}m.jp2"
        _raster(jp2, dns[band], res, "JP2OpenJPEG")
    product = tmp / "product.zip"
    with zipfile.ZipFile(product, "w") as z:
        for path in sorted((tmp / "build").rglob("*")):
            z.write(path, path.relative_to(tmp / "build").as_posix())
    return product


@pytest.fixture(scope="module")
def jp2_driver() -> None:
    from osgeo import gdal

    if gdal.GetDriverByName("JP2OpenJPEG") is None:
        pytest.skip("GDAL has no JP2OpenJPEG driver")


def test_safe_scene_reads_like_the_same_data_as_cogs(jp2_driver: None, tmp_path: Path) -> None:
    when = dt.datetime(2022, 6, 5, 10, 20, tzinfo=dt.UTC)
    dns = _dns(1)
    cog = _cog_scene(tmp_path / "cog", "cog", when, dns)
    zip_path = _safe_zip(tmp_path / "safe", when, dns)
    safe = SceneInput("safe", "sentinel-2-l2a", when, {"product": str(zip_path)}, {"format": "SAFE"})
    block = Block(0, 0, 64, 64)
    a, b = read_block(cog, GRID, block), read_block(safe, GRID, block)
    assert np.isfinite(a).all() and np.abs(a - b).max() <= 1e-4
    # the offset came from MTD_MSIL2A.xml: DN 1100 is reflectance 0.01
    assert a.min() >= 0.01 - 1e-6 and a.max() < 0.4


def test_safe_scene_ends_up_in_a_cube_next_to_cog_scenes(jp2_driver: None, tmp_path: Path) -> None:
    d1, d2 = dt.datetime(2022, 3, 1, 10, tzinfo=dt.UTC), dt.datetime(2022, 9, 1, 10, tzinfo=dt.UTC)
    dn1, dn2 = _dns(1), _dns(2)
    spec = CubeSpec(aoi="t", grid=GRID, year=2022, calendar=Calendar(6), block_size=32)
    cogs = [_cog_scene(tmp_path, "c1", d1, dn1), _cog_scene(tmp_path, "c2", d2, dn2)]
    safe = SceneInput(
        "s1", "sentinel-2-l2a", d1, {"product": str(_safe_zip(tmp_path / "s", d1, dn1))}, {"format": "SAFE"}
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
