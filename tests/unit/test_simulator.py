"""The scene simulator on tiny scenarios: contract format, encodings, flags and planted truth."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import pytest
import yaml
from osgeo import gdal, osr

from eo_simulator import ScenarioConfig, SimulationResult, simulate
from eo_simulator.spectra import ENDMEMBERS, S2_BAND_INDEX
from eo_tasks.core.classes import CLASS_BY_NAME, Legend
from eo_tasks.core.errors import ConfigError
from eo_tasks.preprocess.harmonize import msi_to_oli, oli_to_msi

gdal.UseExceptions()

TINY: dict[str, Any] = {
    "seed": 2,
    "width": 80,
    "height": 80,
    "years": [2021, 2022],
    "s2_per_year": 3,
    "l8_per_year": 2,
    "n_changes": 3,
}
S2_ASSETS = {
    "blue",
    "green",
    "red",
    "nir",
    "rededge1",
    "rededge2",
    "rededge3",
    "nir08",
    "swir16",
    "swir22",
    "scl",
}
L8_ASSETS = {"blue", "green", "red", "nir08", "swir16", "swir22", "qa_pixel"}
S2_PROPERTIES = {
    "datetime",
    "platform",
    "constellation",
    "eo:cloud_cover",
    "s2:mgrs_tile",
    "proj:epsg",
    "s2:processing_baseline",
    "earthsearch:boa_offset_applied",
}
L8_PROPERTIES = {"datetime", "platform", "eo:cloud_cover", "landsat:wrs_path", "landsat:wrs_row", "proj:epsg"}
BASELINE_04_00 = datetime.fromisoformat("2022-01-25T00:00:00+00:00")
CLOUD_CODES = (1, 2)  # thin and thick cloud in the cloud truth rasters


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> SimulationResult:
    """Every scene partly cloudy, half of them with cirrus."""
    config = ScenarioConfig.from_dict(
        {**TINY, "cloud_free_probability": 0.0, "overcast_probability": 0.0, "cirrus_probability": 0.5}
    )
    return simulate(config, tmp_path_factory.mktemp("cloudy") / "archive")


@pytest.fixture(scope="module")
def clear_archive(tmp_path_factory: pytest.TempPathFactory) -> SimulationResult:
    """Same landscape and events, no clouds at all, more scenes."""
    config = ScenarioConfig.from_dict(
        {**TINY, "s2_per_year": 6, "cloud_free_probability": 1.0, "overcast_probability": 0.0}
    )
    return simulate(config, tmp_path_factory.mktemp("clear") / "archive")


def read(path: Path) -> np.ndarray:
    return np.asarray(gdal.Open(str(path)).ReadAsArray())


def items(result: SimulationResult, collection: str) -> list[pystac.Item]:
    catalog = pystac.Catalog.from_file(str(result.catalog))
    child = catalog.get_child(collection)
    assert child is not None
    return sorted(child.get_items(), key=lambda item: item.id)


def raw_properties(item: pystac.Item) -> dict[str, Any]:
    """The properties as written (pystac migrates some extension fields when it reads them)."""
    properties: dict[str, Any] = json.loads(Path(item.get_self_href() or "").read_text())["properties"]
    return properties


def asset_path(item: pystac.Item, key: str) -> Path:
    return Path(item.assets[key].get_absolute_href() or "")


def aoi_window(result: SimulationResult) -> tuple[slice, slice]:
    """Rows/columns of the AOI inside the Sentinel-2 scene grid."""
    scenario = json.loads(result.scenario.read_text())
    aoi, scene = scenario["aoi_grid"]["bounds"], scenario["scene_grid"]["bounds"]
    row0, col0 = round((scene[3] - aoi[3]) / 10), round((aoi[0] - scene[0]) / 10)
    height, width = scenario["aoi_grid"]["shape"]
    return slice(row0, row0 + height), slice(col0, col0 + width)


def s2_reflectance(item: pystac.Item, band: str) -> np.ndarray:
    """Decodes Sentinel-2 DNs with the contract's rule (offset only from baseline 04.00)."""
    offset = 1000 if item.properties["s2:processing_baseline"] >= "04.00" else 0
    return (read(asset_path(item, band)).astype(np.float64) - offset) / 10000


def scl_at_10_m(item: pystac.Item) -> np.ndarray:
    return np.repeat(np.repeat(read(asset_path(item, "scl")), 2, 0), 2, 1)


def checksums(result: SimulationResult) -> dict[str, str]:
    return {
        path.relative_to(result.root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(result.root.rglob("*.tif"))
    }


def test_same_seed_gives_identical_files_and_another_seed_does_not(tmp_path: Path) -> None:
    small = {**TINY, "years": [2021], "s2_per_year": 2, "l8_per_year": 1}
    first = simulate(ScenarioConfig.from_dict({**small, "seed": 5}), tmp_path / "a")
    again = simulate(ScenarioConfig.from_dict({**small, "seed": 5}), tmp_path / "b")
    other = simulate(ScenarioConfig.from_dict({**small, "seed": 6}), tmp_path / "c")

    assert checksums(first) == checksums(again)
    assert first.changes.read_text() == again.changes.read_text()
    differing = [name for name, digest in checksums(other).items() if checksums(first).get(name) != digest]
    assert len(differing) > len(checksums(other)) // 2


def test_catalog_items_have_the_contract_properties_and_assets(archive: SimulationResult) -> None:
    s2_items, l8_items = items(archive, "sentinel-2-l2a"), items(archive, "landsat-c2-l2")

    assert (len(s2_items), len(l8_items)) == (archive.n_s2_items, archive.n_l8_items) == (6, 4)
    for item in s2_items:
        properties = raw_properties(item)
        assert set(properties) >= S2_PROPERTIES
        assert set(item.assets) == S2_ASSETS
        assert properties["proj:epsg"] == 32632
        assert item.properties["proj:code"] == "EPSG:32632"  # pystac migrates proj:epsg on reading
        assert properties["s2:mgrs_tile"] == "32TPR"
        assert item.id.startswith(("S2A_32TPR_", "S2B_32TPR_")) and item.id.endswith("_0_L2A")
        assert properties["platform"] == f"sentinel-2{item.id[2].lower()}"
    for item in l8_items:
        assert set(raw_properties(item)) >= L8_PROPERTIES
        assert set(item.assets) == L8_ASSETS
        assert item.id.startswith("LC08_L2SP_193028_")
    for item in s2_items + l8_items:
        assert item.bbox is not None
        west, south, east, north = item.bbox
        assert 10.2 < west < east < 10.4 and 45.9 < south < north < 46.1
        for asset in item.assets.values():
            assert asset.media_type == "image/tiff; application=geotiff; profile=cloud-optimized"
            assert (
                asset.roles and "proj:shape" in asset.extra_fields and "proj:transform" in asset.extra_fields
            )
            assert "eo:bands" in asset.extra_fields or asset.roles != ["data", "reflectance"]


def test_every_checksum_and_size_matches_its_file(archive: SimulationResult) -> None:
    for item in items(archive, "sentinel-2-l2a") + items(archive, "landsat-c2-l2"):
        for asset in item.assets.values():
            content = Path(asset.get_absolute_href() or "").read_bytes()
            assert asset.extra_fields["file:checksum"] == "1220" + hashlib.sha256(content).hexdigest()
            assert asset.extra_fields["file:size"] == len(content)
            shape = asset.extra_fields["proj:shape"]
            assert list(gdal.Open(str(asset.get_absolute_href())).ReadAsArray().shape) == shape


def test_the_boa_offset_is_there_only_from_processing_baseline_04_00(clear_archive: SimulationResult) -> None:
    for item in items(clear_archive, "sentinel-2-l2a"):
        new_baseline = item.datetime is not None and item.datetime >= BASELINE_04_00
        assert (item.properties["s2:processing_baseline"] >= "04.00") == new_baseline
        assert item.properties["earthsearch:boa_offset_applied"] is False
        assert item.assets["red"].extra_fields["raster:bands"][0]["offset"] == (-0.1 if new_baseline else 0.0)


def test_clear_water_decodes_to_the_water_spectrum_on_both_baselines(clear_archive: SimulationResult) -> None:
    rows, cols = aoi_window(clear_archive)
    years = clear_archive.landcover.values()
    always_water = np.logical_and.reduce([read(path) == CLASS_BY_NAME["water"].code for path in years])
    water = always_water & (read(clear_archive.change_mask) == 0)
    expected = np.array(ENDMEMBERS["water"])
    baselines = set()
    for item in items(clear_archive, "sentinel-2-l2a"):
        clear_water = water & (scl_at_10_m(item)[rows, cols] == 6)
        assert clear_water.sum() > 50
        baselines.add(item.properties["s2:processing_baseline"] >= "04.00")
        for band in ("blue", "green", "red", "nir"):
            observed = np.median(s2_reflectance(item, band)[rows, cols][clear_water])
            assert observed == pytest.approx(expected[S2_BAND_INDEX[band]], abs=0.004), (item.id, band)
    assert baselines == {False, True}


def pure_water_on(grid_of: Path, result: SimulationResult) -> np.ndarray:
    """Pixels of the raster ``grid_of`` that lie entirely in true (never changing) water."""
    water = np.logical_and.reduce(
        [read(path) == CLASS_BY_NAME["water"].code for path in result.landcover.values()]
    )
    truth = gdal.Open(str(result.change_mask))
    memory = gdal.GetDriverByName("MEM").Create("", truth.RasterXSize, truth.RasterYSize, 1, gdal.GDT_Float32)
    memory.SetGeoTransform(truth.GetGeoTransform())
    memory.SetProjection(truth.GetProjection())
    memory.GetRasterBand(1).WriteArray((water & (read(result.change_mask) == 0)).astype(np.float32))
    target = gdal.Open(str(grid_of))
    left, size, _, top, _, _ = target.GetGeoTransform()
    bounds = (left, top - size * target.RasterYSize, left + size * target.RasterXSize, top)
    share = gdal.Warp(
        "",
        memory,
        format="MEM",
        dstSRS=target.GetProjection(),
        outputBounds=bounds,
        width=target.RasterXSize,
        height=target.RasterYSize,
        resampleAlg="average",
    ).ReadAsArray()
    return np.asarray(share >= 0.999)


def test_clear_landsat_water_is_the_oli_view_of_the_same_ground(tmp_path: Path) -> None:
    config = {**TINY, "width": 128, "height": 128, "years": [2021], "s2_per_year": 1, "l8_per_year": 2}
    result = simulate(
        ScenarioConfig.from_dict({**config, "cloud_free_probability": 1.0, "overcast_probability": 0.0}),
        tmp_path / "archive",
    )
    for item in items(result, "landsat-c2-l2"):
        water = pure_water_on(asset_path(item, "red"), result)
        qa = read(asset_path(item, "qa_pixel"))
        assert water.sum() >= 5 and ((qa[water] & (1 << 7)) > 0).all()
        for band in ("blue", "green", "red", "nir08", "swir16", "swir22"):
            observed = float(np.median(read(asset_path(item, band))[water] * 0.0000275 - 0.2))
            msi = ENDMEMBERS["water"][S2_BAND_INDEX[band]]
            assert observed == pytest.approx(float(msi_to_oli(np.array(msi), band)), abs=0.004), (
                item.id,
                band,
            )
            assert float(oli_to_msi(np.array(observed), band)) == pytest.approx(msi, abs=0.004)


def test_scl_flags_exactly_the_planted_clouds(archive: SimulationResult) -> None:
    for item in items(archive, "sentinel-2-l2a"):
        scl = read(asset_path(item, "scl"))
        truth = read(archive.cloud_truth / f"{item.id}.tif")
        cells = truth.reshape(scl.shape[0], 2, scl.shape[1], 2)
        any_cloud = np.isin(cells, CLOUD_CODES).any(axis=(1, 3))
        all_clear = (cells == 0).all(axis=(1, 3))
        valid = ~np.isin(scl, (0, 1))
        assert np.array_equal(np.isin(scl, (8, 9))[valid], any_cloud[valid]), item.id
        assert np.array_equal(np.isin(scl, (4, 5, 6, 11))[valid], all_clear[valid]), item.id
        cloudy_percent = 100 * np.isin(scl, (8, 9, 10)).sum() / max(1, (scl != 0).sum())
        assert item.properties["eo:cloud_cover"] == pytest.approx(cloudy_percent, abs=0.01)
    assert any(item.properties["eo:cloud_cover"] > 1 for item in items(archive, "sentinel-2-l2a"))


def test_qa_pixel_flags_exactly_the_planted_clouds(archive: SimulationResult) -> None:
    cloud, cirrus_or_cloud_or_shadow, any_cloud_flag = 1 << 3, 0b11100, 0b11110
    for item in items(archive, "landsat-c2-l2"):
        qa = read(asset_path(item, "qa_pixel"))
        truth = read(archive.cloud_truth / f"{item.id}.tif")
        assert np.array_equal((qa & cloud) > 0, np.isin(truth, CLOUD_CODES)), item.id
        assert not (qa[truth == 0] & cirrus_or_cloud_or_shadow).any(), item.id
        assert (truth[(qa & any_cloud_flag) == 0] == 0).all(), item.id


def test_landsat_scenes_lie_on_30_m_pixels_in_the_next_utm_zone(archive: SimulationResult) -> None:
    aoi = yaml.safe_load(archive.aoi_yaml.read_text())["grid"]
    source, target = osr.SpatialReference(), osr.SpatialReference()
    source.ImportFromEPSG(32632)
    target.ImportFromEPSG(32633)
    for srs in (source, target):
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    to_landsat = osr.CoordinateTransformation(source, target)
    xmin, ymin, xmax, ymax = aoi["bounds"]
    corners = [to_landsat.TransformPoint(x, y)[:2] for x in (xmin, xmax) for y in (ymin, ymax)]
    for item in items(archive, "landsat-c2-l2"):
        assert raw_properties(item)["proj:epsg"] == 32633
        dataset = gdal.Open(str(asset_path(item, "red")))
        srs = osr.SpatialReference(wkt=dataset.GetProjection())
        assert srs.GetAuthorityCode(None) == "32633"
        left, width, _, top, _, height = dataset.GetGeoTransform()
        assert (width, height) == (30.0, -30.0)
        right, bottom = left + 30 * dataset.RasterXSize, top - 30 * dataset.RasterYSize
        assert all(left < x < right and bottom < y < top for x, y in corners)


def test_planted_permanent_changes_are_in_the_truth_rasters_with_their_dates(
    archive: SimulationResult,
) -> None:
    changes = json.loads(archive.changes.read_text())
    permanent = [change for change in changes if change["kind"] == "permanent"]
    mask, days = read(archive.change_mask), read(archive.change_date)
    landcover = {year: read(path) for year, path in archive.landcover.items()}

    assert len(permanent) == archive.n_permanent_changes == 3
    assert {change["date"][:4] for change in permanent} == {"2021", "2022"}
    assert any(change["date"][5:7] in ("10", "11", "12") for change in permanent)
    assert mask.sum() == sum(change["n_pixels"] for change in permanent)
    for change in permanent:
        day = date.fromisoformat(change["date"])
        pixels = days == (day - date(1970, 1, 1)).days
        assert pixels.sum() == change["n_pixels"] > 100
        assert mask[pixels].all()
        for year, classes in landcover.items():
            expected = change["to_class"] if year >= day.year else change["from_class"]
            assert (classes[pixels] == CLASS_BY_NAME[expected].code).all(), (change["id"], year)
    kinds = {change["process"] for change in changes if change["kind"] == "seasonal"}
    assert {"snow", "crop_rotation", "flood"} <= kinds


def test_a_new_water_body_appears_in_the_scenes_after_its_date(clear_archive: SimulationResult) -> None:
    changes = json.loads(clear_archive.changes.read_text())
    (new_water,) = [c for c in changes if c["kind"] == "permanent" and c["to_class"] == "water"]
    day = date.fromisoformat(new_water["date"])
    days = read(clear_archive.change_date)
    rows, cols = aoi_window(clear_archive)
    pixels = days == (day - date(1970, 1, 1)).days
    seen_before = seen_after = 0
    for item in items(clear_archive, "sentinel-2-l2a"):
        scl = scl_at_10_m(item)[rows, cols][pixels]
        if (scl == 0).mean() > 0.5:  # beyond the swath edge
            continue
        water_share = float((scl[scl != 0] == 6).mean())
        assert item.datetime is not None
        if item.datetime.date() < day:
            assert water_share < 0.2, item.id
            seen_before += 1
        elif (item.datetime.date() - day).days > 30:
            assert water_share > 0.7, item.id
            seen_after += 1
    assert seen_before and seen_after


def test_reference_differs_from_truth_only_in_recorded_errors(archive: SimulationResult) -> None:
    truth = read(archive.landcover[2021])
    reference = Legend.load("worldcover").to_platform(read(archive.reference))
    errors = read(archive.reference_error)
    blocks = np.pad(truth, ((0, -truth.shape[0] % 3), (0, -truth.shape[1] % 3)), mode="edge")
    blocks = blocks.reshape(blocks.shape[0] // 3, 3, blocks.shape[1] // 3, 3)
    mixed = (blocks != blocks[:, :1, :, :1]).any(axis=(1, 3))
    mixed = np.repeat(np.repeat(mixed, 3, 0), 3, 1)[: truth.shape[0], : truth.shape[1]]
    planted = float((errors == 1).mean())
    recorded = json.loads(archive.scenario.read_text())["reference"]

    assert np.array_equal(reference != truth, errors > 0)
    assert mixed[errors == 2].all()
    assert 0.07 <= planted <= 0.17
    assert recorded["planted_error_fraction"] == pytest.approx(planted, abs=1e-4)


def test_aoi_yaml_points_at_the_final_archive(archive: SimulationResult) -> None:
    aoi = yaml.safe_load(archive.aoi_yaml.read_text())

    bounds = [600000.0, 5099200.0, 600800.0, 5100000.0]
    assert aoi["grid"] == {"epsg": 32632, "bounds": bounds, "resolution": 10}
    assert (aoi["first_year"], aoi["last_year"], aoi["cloud_cover_max"]) == (2021, 2022, 40)
    assert Path(aoi["sources"][0]["path"]) == archive.catalog and archive.catalog.is_file()
    assert aoi["sources"][0]["collections"] == ["sentinel-2-l2a", "landsat-c2-l2"]
    assert aoi["reference"] == {"path": str(archive.reference), "legend": "worldcover"}
    assert not list(archive.root.parent.glob("*.tmp-*"))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("width", 47),
        ("height", 8),
        ("epsg", 4326),
        ("years", [2021, 2023]),
        ("years", [2010]),
        ("s2_per_year", 0),
        ("cloud_free_probability", 1.5),
        ("origin", [610005, 5130000]),
        ("n_changes", "3"),
        ("colour", 1),
    ],
)
def test_a_bad_config_value_raises_a_config_error_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field):
        ScenarioConfig.from_dict({**TINY, field: value})


def test_an_existing_archive_is_only_replaced_with_overwrite(tmp_path: Path) -> None:
    config = ScenarioConfig.from_dict({**TINY, "years": [2021], "s2_per_year": 1, "l8_per_year": 1})
    root = tmp_path / "archive"
    root.mkdir()
    (root / "keep.txt").write_text("x")
    with pytest.raises(ConfigError, match="not empty"):
        simulate(config, root)
    steps: list[tuple[int, int]] = []

    result = simulate(config, root, lambda done, total, message: steps.append((done, total)), overwrite=True)

    assert not (root / "keep.txt").exists() and result.catalog.is_file()
    assert steps[-1] == (4, 4) and [done for done, _ in steps] == sorted(done for done, _ in steps)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["archive"]


def test_the_cli_simulates_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    command = [sys.executable, "-m", "eo_simulator", str(out), "--seed", "2", "--size", "48"]
    command += ["--years", "2021", "--s2-per-year", "2", "--l8-per-year", "1", "--n-changes", "1"]

    first = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    again = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)

    assert first.returncode == 0, first.stderr
    assert "wrote 2 Sentinel-2 and 1 Landsat-8 items" in first.stdout and "5/5" in first.stderr
    assert len(list(pystac.Catalog.from_file(str(out / "catalog.json")).get_items(recursive=True))) == 3
    assert again.returncode == 2 and "not empty" in again.stderr


def test_the_aoi_file_written_is_a_valid_platform_aoi(tmp_path: Path) -> None:
    from eo_simulator import ScenarioConfig, simulate
    from eo_tasks.core.aoi import AOIConfig

    result = simulate(
        ScenarioConfig.from_dict(
            {"seed": 4, "width": 48, "height": 48, "years": [2021], "s2_per_year": 2, "l8_per_year": 1}
        ),
        tmp_path / "a",
    )
    aoi = AOIConfig.load(result.root / "aoi.yaml")
    assert aoi.name == "sim_seed4"
    assert aoi.grid.shape == (48, 48)
