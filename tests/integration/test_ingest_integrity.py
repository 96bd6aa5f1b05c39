"""Scene readiness against the real PostGIS catalog: proven whole, or quarantined and fetched again."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from eo_tasks.core.errors import ChecksumError, DownloadError, ProviderError
from eo_tasks.core.scenes import S2_BANDS, AssetRef, SceneRecord, scoped_id
from eo_tasks.ingest.pipeline import check_downloads, download_scene, scene_dir
from eo_tasks.ingest.providers import SceneProvider
from eo_tasks.store.scenes import SceneCatalog


def _cog(path: Path, value: int) -> bytes:
    from osgeo import gdal, osr

    gdal.UseExceptions()
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32632)
    ds = gdal.GetDriverByName("GTiff").Create(str(path), 256, 256, 1, gdal.GDT_UInt16, ["TILED=YES"])
    ds.SetGeoTransform((600000, 10, 0, 5000000, 0, -10))
    ds.SetProjection(srs.ExportToWkt())
    ds.GetRasterBand(1).WriteArray(
        np.full((256, 256), value, dtype=np.uint16) + np.arange(256, dtype=np.uint16)
    )
    ds = None
    return path.read_bytes()


@pytest.fixture
def catalog(conn: Any) -> SceneCatalog:
    return SceneCatalog(conn)


def test_truncated_file_without_checksum_is_quarantined_then_refetched(
    catalog: SceneCatalog, tmp_path: Path
) -> None:
    archive = tmp_path / "archive"
    archive.mkdir()
    whole = {band: _cog(archive / f"{band}.tif", 1000 + i) for i, band in enumerate(S2_BANDS)}
    # the hub's red file arrives cut short; no checksum, no size published (as on Earth Search)
    (archive / "red.tif").write_bytes(whole["red"][: len(whole["red"]) * 2 // 3])
    scene = SceneRecord(
        id=scoped_id("local", "S2A_32TPS_20210605_0_L2A"),
        collection="sentinel-2-l2a",
        platform="sentinel-2a",
        datetime=dt.datetime(2021, 6, 5, 10, 20, tzinfo=dt.UTC),
        cloud_cover=1.0,
        provider="local",
        provider_id="S2A_32TPS_20210605_0_L2A",
        footprint_wkt="POLYGON((10 46,11 46,11 47,10 47,10 46))",
        assets=tuple(AssetRef(b, str(archive / f"{b}.tif")) for b in S2_BANDS),
    )
    catalog.upsert_discovered("trentino", [scene])
    data = tmp_path / "data"
    with pytest.raises(ChecksumError, match="not readable to its end"):
        download_scene(scene.id, catalog, SceneProvider(), data)
    row = catalog.get(scene.id)
    assert row.state == "quarantined" and "red" in (catalog_reason := _reason(catalog, scene.id))
    assert "not readable" in catalog_reason
    assert catalog.to_download("trentino", max_attempts=3) == [scene.id]  # offered again next run
    quarantined = data / "quarantine" / "sentinel-2-l2a" / "local" / "S2A_32TPS_20210605_0_L2A"
    assert sorted(p.name for p in quarantined.iterdir()) == ["red.tif", "red.tif.reason.txt"]

    # next run: the hub serves the whole file; the scene is fetched again and becomes ready
    (archive / "red.tif").write_bytes(whole["red"])
    result = download_scene(scene.id, catalog, SceneProvider(), data)
    assert result.state == "ready"
    target = scene_dir(data, "sentinel-2-l2a", scene.id)
    assert (target / "red.tif").read_bytes() == whole["red"]
    assert catalog.get(scene.id).attempts == 2


def test_tries_are_bounded_across_runs(catalog: SceneCatalog, tmp_path: Path) -> None:
    source = tmp_path / "red.tif"
    source.write_bytes(b"II*\x00 not a tiff")
    scene = SceneRecord(
        id=scoped_id("local", "S2A_X"),
        collection="sentinel-2-l2a",
        platform="sentinel-2a",
        datetime=dt.datetime(2021, 6, 5, tzinfo=dt.UTC),
        cloud_cover=1.0,
        provider="local",
        provider_id="S2A_X",
        footprint_wkt="POLYGON((10 46,11 46,11 47,10 47,10 46))",
        assets=(AssetRef("red", str(source)),),
    )
    catalog.upsert_discovered("trentino", [scene])
    for _ in range(2):
        with pytest.raises(ChecksumError):
            download_scene(scene.id, catalog, SceneProvider(), tmp_path / "data")
    assert catalog.to_download("trentino", max_attempts=2) == []  # given up after 2 runs, reason kept
    assert "not readable" in _reason(catalog, scene.id)


def test_hostile_scene_id_writes_nothing_outside_the_archive(tmp_path: Path) -> None:
    with pytest.raises(ProviderError, match="refused item id"):
        scene_dir(tmp_path / "data", "sentinel-2-l2a", "local/../../x")
    with pytest.raises(ProviderError, match="refused item id"):
        scoped_id("local", "../../x")
    assert not (tmp_path / "x").exists()


def _reason(catalog: SceneCatalog, scene_id: str) -> str:
    with catalog.conn.cursor() as cur:
        cur.execute("SELECT reason FROM scene WHERE id = %s", (scene_id,))
        return str(cur.fetchone()[0])


def test_run_check_fails_listing_quarantined_scenes_and_counts_refusals(
    catalog: SceneCatalog, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good, bad = tmp_path / "good.tif", tmp_path / "bad.tif"
    _cog(good, 1000)
    bad.write_bytes(b"II*\x00 cut short")

    def scene(name: str, source: Path) -> SceneRecord:
        return SceneRecord(
            id=scoped_id("local", name),
            collection="sentinel-2-l2a",
            platform="sentinel-2a",
            datetime=dt.datetime(2021, 6, 5, tzinfo=dt.UTC),
            cloud_cover=1.0,
            provider="local",
            provider_id=name,
            footprint_wkt="POLYGON((10 46,11 46,11 47,10 47,10 46))",
            assets=(AssetRef("red", str(source)),),
        )

    scenes = [scene("S2A_GOOD", good), scene("S2A_BAD", bad)]
    catalog.upsert_discovered("trentino", scenes)
    ids = [s.id for s in scenes]
    result = download_scene(ids[0], catalog, SceneProvider(), tmp_path / "data")
    with pytest.raises(ChecksumError):
        download_scene(ids[1], catalog, SceneProvider(), tmp_path / "data")
    caplog.set_level(logging.INFO, logger="eo_tasks.ingest.pipeline")
    with pytest.raises(DownloadError) as lost:
        check_downloads("trentino", catalog, ids, fetched=1 if result.bytes else 0, refused=2)
    message = str(lost.value)
    assert "1 scenes of this run did not arrive" in message
    assert "local/S2A_BAD [quarantined]" in message and "not readable" in message
    assert "S2A_GOOD" not in message
    assert "1 scenes fetched, 1 quarantined or failed, 2 refused by policy" in caplog.text
    assert "'quarantined': 1" in caplog.text and "'ready': 1" in caplog.text

    # refusals alone are expected: the check passes and says how many
    report = check_downloads("trentino", catalog, ids[:1], fetched=1, refused=2)
    assert report.lost == () and report.refused == 2 and report.states == {"ready": 1, "quarantined": 1}
