"""HDF5 datacubes: one file per AOI and year, built block by block on Dask, written by one writer.

Layout (the contract other stages read):

- ``reflectance`` (time, y, x, band) int16 = round(reflectance / 1e-4) (attributes ``scale_factor``
  1e-4 and ``_FillValue`` -32768 for pixels never observed in the year), gap-filled, chunked so that
  one chunk holds the whole time axis of a spatial block (what per-pixel time-series models read),
  gzip level 1 + shuffle, chunks aligned with the blocks; the workers filter and compress the
  chunks and the writer stores their bytes (``write_direct_chunk``), so it is not the bottleneck;
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
import itertools
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


IN_FLIGHT_PER_THREAD = 2  # blocks submitted per worker thread: workers stay busy, results never pile up


@dataclass
class EncodedBlock:
    """A block's HDF5 chunks, filtered and compressed on the worker (the writer only stores bytes).

    Attributes:
        block: The block.
        chunks: ``(row0, col0)`` of each chunk → its reflectance and valid chunk bytes.
        observed: ``(time,)`` observed pixels per composite.
        filled: ``(time,)`` gap-filled pixels per composite.
        failed_scenes: Scene id → why it could not be read.
    """

    block: Block
    chunks: dict[tuple[int, int], tuple[bytes, bytes]]
    observed: np.ndarray
    filled: np.ndarray
    failed_scenes: dict[str, str]


def encode_block(result: BlockResult, chunk: tuple[int, int]) -> EncodedBlock:
    """Cuts a block into chunks of ``chunk`` (rows, cols) and applies the cube's filters to each.

    ``reflectance``: HDF5 shuffle (bytes grouped by position) then deflate level 1; ``valid``:
    deflate level 4. Edge chunks are padded with the fill values, as HDF5 stores them.
    """
    import zlib

    b, (n, _, _, nb), (side_r, side_c) = result.block, result.reflectance.shape, chunk
    chunks = {}
    for r in range(0, b.rows, side_r):
        for c in range(0, b.cols, side_c):
            refl = np.full((n, side_r, side_c, nb), FILL, dtype="<i2")
            valid = np.zeros((n, side_r, side_c), np.uint8)
            part = result.reflectance[:, r : r + side_r, c : c + side_c]
            refl[:, : part.shape[1], : part.shape[2]] = part
            valid[:, : part.shape[1], : part.shape[2]] = result.observed[:, r : r + side_r, c : c + side_c]
            shuffled = refl.view(np.uint8).reshape(-1, 2).T.tobytes()
            chunks[(b.row0 + r, b.col0 + c)] = (zlib.compress(shuffled, 1), zlib.compress(valid.tobytes(), 4))
    observed = result.observed.reshape(n, -1).sum(axis=1)
    return EncodedBlock(b, chunks, observed, result.filled, result.failed_scenes)


def build_encoded_block(
    scenes: Sequence[SceneInput], spec: CubeSpec, block: Block, chunk: tuple[int, int]
) -> EncodedBlock:
    """:func:`build_block` then :func:`encode_block`, as one task on a worker."""
    return encode_block(build_block(scenes, spec, block), chunk)


def _compute_blocks(
    scenes: list[SceneInput], spec: CubeSpec, todo: list[Block], client: Any | None, chunk: tuple[int, int]
) -> Iterator[EncodedBlock]:
    """The blocks' chunks as they complete; at most ``IN_FLIGHT_PER_THREAD`` per worker thread pending."""
    if client is None:
        for block in todo:
            yield build_encoded_block(scenes, spec, block, chunk)
        return
    from distributed import as_completed

    scattered = client.scatter(scenes, broadcast=True)
    window = max(2, IN_FLIGHT_PER_THREAD * sum(client.nthreads().values()))
    pending = iter(todo)

    def submit(block: Block) -> Any:
        return client.submit(build_encoded_block, scattered, spec, block, chunk, pure=False)

    running = as_completed([submit(block) for block in itertools.islice(pending, window)])
    for future in running:
        result = future.result()
        future.release()
        following = next(pending, None)
        if following is not None:
            running.add(submit(following))
        yield result


def chunk_shape(block_size: int, rows: int, cols: int) -> tuple[int, int]:
    """Spatial (rows, cols) of the cube's chunks, aligned with the blocks so each block writes whole chunks.

    64 px (the block when 64 does not divide it), at most the AOI's side.
    """
    side = 64 if block_size % 64 == 0 else block_size
    return min(side, rows), min(side, cols)


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
    spatial = chunk_shape(spec.block_size, rows, cols)
    chunk = (n, *spatial, nb)
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
        for done, result in enumerate(_compute_blocks(usable, spec, todo, client, spatial), start=1):
            for (r, c), (refl_bytes, valid_bytes) in result.chunks.items():  # chunk-aligned: stored as is
                refl.id.write_direct_chunk((0, r, c, 0), refl_bytes)
                valid.id.write_direct_chunk((0, r, c), valid_bytes)
            observed_pixels += result.observed
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
