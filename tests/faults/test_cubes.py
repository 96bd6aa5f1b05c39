"""A cube whose file no longer matches the checksum in the catalog: found before use, rebuilt."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from eo_tasks.core.errors import CatalogError
from eo_tasks.core.scenes import AssetRef, SceneRecord
from eo_tasks.maps.pipeline import inference_inputs
from eo_tasks.preprocess.datacube import scene_fingerprint, years_to_build
from eo_tasks.store.scenes import SceneCatalog
from tests.faults import world
from tests.faults.conftest import rows


def _ready_scenes(catalog: SceneCatalog, root: Path) -> None:
    """One downloaded scene per year, and the cubes registered as built from them."""
    for year in world.YEARS:
        scene = SceneRecord(
            id=f"S2_{year}_1",
            collection="sentinel-2-l2a",
            platform="sentinel-2a",
            datetime=dt.datetime(year, 6, 1, tzinfo=dt.UTC),
            cloud_cover=1.0,
            provider="local",
            provider_id=f"S2_{year}_1",
            footprint_wkt="POLYGON((10 46,11 46,11 47,10 47,10 46))",
            assets=(AssetRef(band="red", href="file:///nowhere/red.tif", checksum=None, size=None),),
        )
        catalog.upsert_discovered(world.AOI, [scene])
        assert catalog.claim(scene.id)
        catalog.mark_ready(scene.id, "/nowhere", "sha", {"red": "/nowhere/red.tif"})
        fingerprint = scene_fingerprint(catalog.ready_scenes(world.AOI, year))
        catalog.record_datacube(world.AOI, year, str(world.cube_file(root, year)), fingerprint, [], {}, 12)


def test_a_corrupted_cube_is_flagged_for_rebuild_and_not_used(
    root: Path, connect: Callable[[], Any], caplog: pytest.LogCaptureFixture
) -> None:
    catalog, config, data = SceneCatalog(connect()), world.config(root), root / "data"
    _ready_scenes(catalog, root)
    world.assemble(catalog.conn, root, 2021)
    assert years_to_build(catalog, config) == []
    assert inference_inputs(catalog, config, 2022, data, "/venv").missing == ()

    cube = world.cube_file(root, 2022)
    raw = bytearray(cube.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # one flipped byte in the middle of the data
    cube.write_bytes(raw)
    caplog.set_level(logging.WARNING)
    inputs = inference_inputs(catalog, config, 2022, data, "/venv")
    assert inputs.values is None
    [missing] = inputs.missing
    assert missing.startswith(f"cube 2022 (rebuild by preprocess_faulty: cube file {cube} no longer matches")
    assert "marked for rebuild" in caplog.text
    assert catalog.datacube_fingerprint(world.AOI, 2022) is None  # not used until rebuilt ...
    assert catalog.datacube_fingerprint(world.AOI, 2021) is not None
    assert years_to_build(catalog, config) == [2022]  # ... and the preprocess step rebuilds it
    with pytest.raises(
        CatalogError, match=r"faulty 2022: cube file .* no longer matches .* marked for rebuild"
    ):
        world.assemble(catalog.conn, root, 2022)  # the assemble step checks its cubes too
    assert [y for (y,) in rows(catalog.conn, "SELECT year FROM lc_map")] == [2021]

    cube.write_bytes(bytes(raw[: len(raw) // 2]))  # truncated by a second fault: still flagged, reason kept
    assert "no longer matches" in inference_inputs(catalog, config, 2022, data, "/venv").missing[0]

    raw[len(raw) // 2] ^= 0xFF  # the rebuild writes a good cube and registers it (with its new checksum)
    cube.write_bytes(raw)
    fingerprint = scene_fingerprint(catalog.ready_scenes(world.AOI, 2022))
    catalog.record_datacube(world.AOI, 2022, str(cube), fingerprint, [], {}, 12)
    assert years_to_build(catalog, config) == []
    assert inference_inputs(catalog, config, 2022, data, "/venv").missing == ()


def test_a_training_set_is_never_built_from_a_corrupted_cube(root: Path, connect: Callable[[], Any]) -> None:
    from eo_tasks.store.trainsets import registered_cubes

    catalog = SceneCatalog(connect())
    _ready_scenes(catalog, root)
    assert sorted(registered_cubes(catalog.conn, world.AOI)) == list(world.YEARS)
    cube = world.cube_file(root, world.YEARS[0])
    cube.write_bytes(cube.read_bytes()[:-1])  # cut short by one byte
    assert sorted(registered_cubes(catalog.conn, world.AOI)) == list(world.YEARS[1:])
    [(reason,)] = rows(catalog.conn, "SELECT stale_reason FROM datacube WHERE year = %s", world.YEARS[0])
    assert "no longer matches" in reason
