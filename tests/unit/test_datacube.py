"""Datacube building on a tiny simulated archive: broken scenes are skipped, killed runs lose nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest

from eo_tasks.core.aoi import AOIConfig
from eo_tasks.core.calendar import Calendar
from eo_tasks.core.cube import Cube, HeldWindow, from_int16, to_int16
from eo_tasks.core.scenes import SceneInput
from eo_tasks.preprocess.datacube import CubeSpec, build_cube
from tests.conftest import REPO


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from eo_simulator import ScenarioConfig, simulate

    root = tmp_path_factory.mktemp("cube") / "archive"
    simulate(
        ScenarioConfig.from_dict(
            {"seed": 5, "width": 48, "height": 48, "years": [2022], "s2_per_year": 6, "l8_per_year": 2}
        ),
        root,
    )
    return root


def _scenes(archive: Path) -> list[SceneInput]:
    import datetime as dt

    scenes = []
    for item_path in sorted(archive.glob("*-*/*/*.json")):
        item = json.loads(item_path.read_text())
        files = {k: str(item_path.parent / Path(a["href"]).name) for k, a in item["assets"].items()}
        when = dt.datetime.fromisoformat(item["properties"]["datetime"].replace("Z", "+00:00"))
        collection = item_path.parent.parent.name
        scenes.append(SceneInput(item["id"], collection, when, files, item["properties"]))
    return scenes


def _spec(archive: Path) -> CubeSpec:
    aoi = AOIConfig.load(archive / "aoi.yaml")
    return CubeSpec(aoi=aoi.name, grid=aoi.grid, year=2022, calendar=Calendar(6), block_size=32)


def test_int16_storage_round_trips() -> None:
    values = np.array([np.nan, -0.2, 0.0, 0.12345, 1.5], dtype=np.float32)
    back = from_int16(to_int16(values))
    np.testing.assert_allclose(back, [np.nan, -0.2, 0.0, 0.1234, 1.5], atol=1e-4)


def test_a_held_window_reads_as_the_file_inside_and_outside_it(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    reflectance = rng.uniform(0, 0.5, (6, 40, 40, 3)).astype(np.float32)
    reflectance[:, 5:9, 5:9] = np.nan  # never observed there
    with h5py.File(tmp_path / "c.h5", "w") as f:
        f.create_dataset("reflectance", data=to_int16(reflectance), chunks=(6, 16, 16, 3), compression="gzip")
        f.create_dataset("valid", data=np.isfinite(reflectance[..., 0]).astype(np.uint8), chunks=(6, 16, 16))
        f.create_dataset("dates", data=[f"2021-01-{d:02d}".encode() for d in range(1, 7)])
        f.attrs.update(
            epsg=32632, geotransform=(0.0, 10.0, 0.0, 400.0, 0.0, -10.0), band_names=["B", "G", "R"]
        )
    cube = Cube.open(tmp_path / "c.h5")
    held = HeldWindow.read_from(cube, slice(2, 20), slice(3, 30))
    assert held.shape == cube.shape and held.dates == cube.dates
    inside, edge, outside = (
        (slice(4, 12), slice(3, 12)),
        (slice(2, 20), slice(3, 30)),
        (slice(14, 40), slice(0, 20)),
    )
    for rows, cols in (inside, edge, outside):
        for from_window, from_file in zip(held.read(rows, cols), cube.read(rows, cols), strict=True):
            np.testing.assert_array_equal(from_window, from_file)
        where = rng.random((rows.stop - rows.start, cols.stop - cols.start)) < 0.3
        for picked, whole in zip(held.read_pixels(rows, cols, where), cube.read(rows, cols), strict=True):
            np.testing.assert_array_equal(picked, whole[:, where])
    held.stored[:] = 0  # the window is what inside reads come from; outside reads go to the file
    assert not held.read(*inside)[0].any()
    np.testing.assert_array_equal(held.read(*outside)[0], cube.read(*outside)[0])


def test_cube_layout(archive: Path, tmp_path: Path) -> None:
    scenes = _scenes(archive)
    report = build_cube(scenes, _spec(archive), tmp_path / "c.h5")
    cube = Cube.open(tmp_path / "c.h5")
    assert cube.shape == (6, 48, 48, 10)
    assert len(cube.dates) == 6 and cube.epsg == 32632
    assert report.scenes_used == len(scenes) and report.scenes_skipped == {}
    with h5py.File(tmp_path / "c.h5") as f:
        assert f["reflectance"].chunks[0] == 6  # one chunk holds the full time axis of a block
        assert f["reflectance"].dtype == np.int16 and f["reflectance"].attrs["scale_factor"] == pytest.approx(
            1e-4
        )
        assert len(f["sensors"]) == 6 and set(json.loads(f.attrs["scenes"])) == {s.id for s in scenes}
    assert not list(tmp_path.glob(".*tmp*"))


def test_a_scene_with_a_missing_or_corrupt_band_is_skipped_and_reported(
    archive: Path, tmp_path: Path
) -> None:
    scenes = _scenes(archive)
    s2 = [s for s in scenes if s.sensor == "S2"]
    broken = tmp_path / "broken"
    missing, corrupt = s2[0], s2[1]
    corrupt_red = broken / "red.tif"
    broken.mkdir()
    data = Path(corrupt.files["red"]).read_bytes()
    corrupt_red.write_bytes(data[: len(data) // 3])  # truncated mid-file
    files_missing = {k: v for k, v in missing.files.items() if k != "swir16"}
    files_corrupt = {**corrupt.files, "red": str(corrupt_red)}
    scenes = [
        SceneInput(
            s.id, s.collection, s.datetime, files_missing if s is missing else files_corrupt, s.properties
        )
        if s in (missing, corrupt)
        else s
        for s in scenes
    ]
    report = build_cube(scenes, _spec(archive), tmp_path / "c.h5")
    assert set(report.scenes_skipped) == {missing.id, corrupt.id}
    assert "swir16" in report.scenes_skipped[missing.id]
    assert "red" in report.scenes_skipped[corrupt.id]
    assert report.scenes_used == len(scenes) - 2
    cube = Cube.open(tmp_path / "c.h5")
    assert json.loads(cube.attrs["skipped_scenes"]).keys() == {missing.id, corrupt.id}
    assert missing.id not in json.loads(cube.attrs["scenes"])


def test_a_run_killed_while_writing_leaves_the_previous_cube_readable(archive: Path, tmp_path: Path) -> None:
    path = tmp_path / "c.h5"
    build_cube(_scenes(archive), _spec(archive), path)
    before = Cube.open(path).read()[0]
    child = textwrap.dedent(
        f"""
        import os, sys, time
        sys.path.insert(0, {str(REPO)!r})
        from pathlib import Path
        from tests.unit.test_datacube import _scenes, _spec
        from eo_tasks.preprocess.datacube import build_cube

        def progress(done, total, seconds):
            print("writing", flush=True)
            time.sleep(60)  # killed here, halfway through the new cube

        archive = Path({str(archive)!r})
        build_cube(_scenes(archive), _spec(archive), Path({str(path)!r}), progress=progress)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", child], stdout=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    after = Cube.open(path).read()[0]
    np.testing.assert_array_equal(before, after)
    assert list(tmp_path.glob(".c.h5.tmp-*")), "the half-written cube stays under its temporary name"
