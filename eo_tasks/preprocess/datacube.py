"""HDF5 datacubes: one file per AOI and year, built block by block on Dask, written by one writer.

Layout (the contract other stages read):

- ``reflectance`` (time, y, x, band) int16 = round(reflectance / 1e-4) (attributes ``scale_factor``
  1e-4 and ``_FillValue`` -32768 for pixels never observed in the year), gap-filled, chunked so that
  one chunk holds the whole time axis of a spatial block (what per-pixel time-series models read),
  gzip level 1 + shuffle (level 1: the single writer must keep up with the Dask workers);
- ``valid`` (time, y, x) uint8: 1 where the composite was observed, 0 where it was gap-filled;
- ``dates`` (time,) ISO dates of the composite windows' centres;
- ``observed_pixels`` / ``filled_pixels`` (time,) counts, ``sensors`` (time,) e.g. ``"S2+L8"``;
- attributes: ``crs_wkt``, ``epsg``, ``geotransform``, ``band_names``, ``year``, ``aoi``,
  ``scenes`` (ids used), ``skipped_scenes`` (JSON: id → reason), ``scene_fingerprint``;
- CF conventions on top (:func:`eo_tasks.core.cube.write_cf_layout`): dimension scales
  ``time``/``y``/``x``/``band``, cell-centre coordinates, a ``spatial_ref`` grid mapping, so
  ``xarray.open_dataset(path, engine="h5netcdf")`` gives a georeferenced dataset.

The file is written under a temporary name and renamed into place, so a run killed halfway leaves
the previous cube readable.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from eo_tasks.core.aoi import AOIConfig
from eo_tasks.core.calendar import Calendar
from eo_tasks.core.cube import FILL, SCALE, cube_path, to_int16, write_cf_layout
from eo_tasks.core.files import atomic_path, file_digest
from eo_tasks.core.grid import Block, GridSpec, blocks
from eo_tasks.core.raster import srs_wkt
from eo_tasks.core.scenes import SceneInput
from eo_tasks.preprocess.composite import composite, fill_gaps
from eo_tasks.preprocess.scene_prep import CUBE_BANDS, SceneReadError, check_scene, read_block

if TYPE_CHECKING:
    from eo_tasks.store.scenes import SceneCatalog

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CubeSpec:
    """What to build: the AOI grid, the year, the calendar, the bands and the block size."""

    aoi: str
    grid: GridSpec
    year: int
    calendar: Calendar = field(default_factory=Calendar)
    bands: tuple[str, ...] = CUBE_BANDS
    block_size: int = 128


@dataclass
class BlockResult:
    """One block's composited, gap-filled time series and its bookkeeping."""

    block: Block
    reflectance: np.ndarray  # (time, rows, cols, bands) int16, scaled by SCALE
    observed: np.ndarray  # (time, rows, cols) bool
    filled: np.ndarray  # (time,) pixels gap-filled per composite
    failed_scenes: dict[str, str]


def scene_fingerprint(scenes: Sequence[SceneInput]) -> str:
    """A digest of the scene ids and files a cube was built from (to detect changed inputs)."""
    digest = hashlib.sha256()
    for scene in sorted(scenes, key=lambda s: s.id):
        digest.update(scene.id.encode())
        digest.update(json.dumps(dict(scene.files), sort_keys=True).encode())
    return digest.hexdigest()


def build_block(scenes: Sequence[SceneInput], spec: CubeSpec, block: Block) -> BlockResult:
    """Composites and gap-fills one block from every scene of the year.

    Scenes are read window by window, so memory holds at most one window's observations.
    """
    n = spec.calendar.n_composites
    comp = np.full((n, block.rows, block.cols, len(spec.bands)), np.nan, dtype=np.float32)
    failed: dict[str, str] = {}
    by_window: dict[int, list[SceneInput]] = {}
    for scene in scenes:
        by_window.setdefault(spec.calendar.window_of(scene.datetime.date()), []).append(scene)
    for window, members in sorted(by_window.items()):
        observations = []
        for scene in members:
            try:
                observations.append(read_block(scene, spec.grid, block, spec.bands))
            except SceneReadError as err:
                failed[scene.id] = str(err)
        if observations:
            comp[window] = composite(np.stack(observations), [0] * len(observations), 1)[0][0]
    observed = np.any(np.isfinite(comp), axis=-1)
    filled, was_filled = fill_gaps(comp)
    filled_pixels = np.any(was_filled, axis=-1).reshape(n, -1).sum(axis=1)
    return BlockResult(block, to_int16(filled), observed, filled_pixels, failed)


@dataclass(frozen=True)
class CubeReport:
    """What a cube build did."""

    path: str
    scenes_used: int
    scenes_skipped: dict[str, str]
    blocks: int
    seconds: float
    observed_pixels: list[int]
    filled_pixels: list[int]


def _usable_scenes(scenes: Sequence[SceneInput], year: int) -> tuple[list[SceneInput], dict[str, str]]:
    usable, skipped = [], {}
    for scene in scenes:
        if scene.datetime.year != year:
            continue
        try:
            check_scene(scene)
        except SceneReadError as err:
            log.warning("skipping scene %s", err)
            skipped[scene.id] = str(err)
            continue
        usable.append(scene)
    return usable, skipped


def _compute_blocks(
    scenes: list[SceneInput], spec: CubeSpec, todo: list[Block], client: Any | None
) -> Iterator[BlockResult]:
    if client is None:
        for block in todo:
            yield build_block(scenes, spec, block)
        return
    from distributed import as_completed

    scattered = client.scatter(scenes, broadcast=True)
    futures = [client.submit(build_block, scattered, spec, block, pure=False) for block in todo]
    for future in as_completed(futures):
        result = future.result()
        future.release()
        yield result


def build_cube(
    scenes: Sequence[SceneInput],
    spec: CubeSpec,
    path: Path,
    client: Any | None = None,
    progress: Callable[[int, int, float], None] | None = None,
) -> CubeReport:
    """Builds and atomically writes the datacube of one AOI and year.

    Args:
        scenes: Ready scenes (any years; those of ``spec.year`` are used).
        spec: What to build.
        path: Destination ``.h5`` file (replaced atomically).
        client: A ``distributed.Client``; None computes the blocks in this process.
        progress: Called with (blocks done, blocks total, seconds elapsed) after each block.

    Returns:
        The report (also stored in the file's attributes).
    """
    import h5py

    t0 = time.monotonic()
    usable, skipped = _usable_scenes(scenes, spec.year)
    rows, cols = spec.grid.shape
    n, nb = spec.calendar.n_composites, len(spec.bands)
    todo = blocks(spec.grid, spec.block_size)
    chunk = (n, min(64, rows), min(64, cols), nb)
    observed_pixels = np.zeros(n, dtype=np.int64)
    filled_pixels = np.zeros(n, dtype=np.int64)
    windows = [spec.calendar.window_of(s.datetime.date()) for s in usable]
    sensors = [
        "+".join(sorted({s.sensor for s, w in zip(usable, windows, strict=True) if w == k})) for k in range(n)
    ]

    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        refl = f.create_dataset(
            "reflectance",
            (n, rows, cols, nb),
            dtype="i2",
            chunks=chunk,
            compression="gzip",
            compression_opts=1,
            shuffle=True,
            fillvalue=FILL,
        )
        valid = f.create_dataset("valid", (n, rows, cols), dtype="u1", chunks=chunk[:3], compression="gzip")
        for done, result in enumerate(_compute_blocks(usable, spec, todo, client), start=1):
            b = result.block
            refl[:, b.row0 : b.row0 + b.rows, b.col0 : b.col0 + b.cols, :] = result.reflectance
            valid[:, b.row0 : b.row0 + b.rows, b.col0 : b.col0 + b.cols] = result.observed
            observed_pixels += result.observed.reshape(n, -1).sum(axis=1)
            filled_pixels += result.filled
            skipped.update(result.failed_scenes)
            if progress:
                progress(done, len(todo), time.monotonic() - t0)
        refl.attrs["scale_factor"] = SCALE
        refl.attrs["_FillValue"] = np.int16(FILL)
        f.create_dataset("dates", data=[d.isoformat().encode() for d in spec.calendar.centers(spec.year)])
        f.create_dataset("observed_pixels", data=observed_pixels)
        f.create_dataset("filled_pixels", data=filled_pixels)
        f.create_dataset("sensors", data=[s.encode() for s in sensors])
        _write_attributes(f, spec, usable, skipped)
    report = CubeReport(
        path=str(path),
        scenes_used=sum(s.id not in skipped for s in usable),
        scenes_skipped=skipped,
        blocks=len(todo),
        seconds=time.monotonic() - t0,
        observed_pixels=observed_pixels.tolist(),
        filled_pixels=filled_pixels.tolist(),
    )
    return report


def _write_attributes(f: Any, spec: CubeSpec, usable: Sequence[SceneInput], skipped: dict[str, str]) -> None:
    """Writes the attributes of the platform's contract and the CF layout (coordinates, grid mapping)."""
    attrs = f.attrs
    attrs["crs_wkt"] = srs_wkt(spec.grid.epsg)
    attrs["epsg"] = spec.grid.epsg
    attrs["geotransform"] = spec.grid.geotransform
    attrs["band_names"] = list(spec.bands)
    attrs["year"] = spec.year
    attrs["aoi"] = spec.aoi
    attrs["scenes"] = json.dumps(sorted(s.id for s in usable if s.id not in skipped))
    attrs["skipped_scenes"] = json.dumps(skipped)
    attrs["scene_fingerprint"] = scene_fingerprint(usable)
    attrs["created_at"] = dt.datetime.now(dt.UTC).isoformat()
    attrs["title"] = f"Composites of {spec.aoi} {spec.year} (eo-platform datacube)"
    write_cf_layout(
        f, spec.grid.epsg, spec.grid.geotransform, spec.calendar.centers(spec.year), list(spec.bands)
    )


def years_to_build(catalog: SceneCatalog, aoi: AOIConfig, forced: Sequence[int] = ()) -> list[int]:
    """Years whose ready scenes differ from those their registered cube was built from (plus ``forced``)."""
    last = aoi.last_year or 9999
    years = []
    for year in catalog.scene_years(aoi.name):
        if not aoi.first_year <= year <= last:
            continue
        current = scene_fingerprint(catalog.ready_scenes(aoi.name, year))
        if year in forced or current != catalog.datacube_fingerprint(aoi.name, year):
            years.append(year)
    return years


def build_year(
    catalog: SceneCatalog,
    aoi: AOIConfig,
    year: int,
    data_dir: Path,
    client: Any | None = None,
    progress: Callable[[int, int, float], None] | None = None,
) -> CubeReport:
    """Builds the AOI's cube of ``year`` from its ready scenes and registers it in the catalog."""
    scenes = catalog.ready_scenes(aoi.name, year)
    spec = CubeSpec(aoi=aoi.name, grid=aoi.grid, year=year, calendar=Calendar(aoi.composites_per_year))
    path = cube_path(data_dir, aoi.name, year)
    report = build_cube(scenes, spec, path, client=client, progress=progress)
    used = [s.id for s in scenes if s.id not in report.scenes_skipped]
    catalog.record_datacube(
        aoi.name,
        year,
        str(path),
        scene_fingerprint(scenes),
        used,
        report.scenes_skipped,
        aoi.composites_per_year,
        sha256=file_digest(path),
    )
    return report
