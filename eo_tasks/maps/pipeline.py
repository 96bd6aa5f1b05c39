"""The yearly-map stage's steps as the ``maps_<aoi>`` DAG runs them: decide the job, then assemble.

Year Y's map needs the cubes of Y−1 and Y, a model, and (after the first year) the stored map of
Y−1; :func:`inference_inputs` says what is still missing or returns the inference job's values.
:func:`assemble_year` turns the job's labels into the year's map, changes, files and rows.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from eo_tasks.core.aoi import AOIConfig
from eo_tasks.core.aoi_sections import ChangeParams
from eo_tasks.core.cube import Cube, cube_path
from eo_tasks.core.errors import CatalogError, IncompleteOutputError
from eo_tasks.maps import annual_maps, confirmation, region_dating, spectral_changes
from eo_tasks.maps.infer import include_indices
from eo_tasks.maps.outputs import MapPaths
from eo_tasks.maps.review import Review, apply_review, polygon_numbers
from eo_tasks.models import read_card
from eo_tasks.store.maps import YEAR_LOCK_WAIT_S, map_cog_path, pending_changes, year_lock
from eo_tasks.store.models import approved_model
from eo_tasks.store.scenes import SceneCatalog

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

log = logging.getLogger(__name__)
LABELS_KEEP_S = 24 * 3600.0  # another run's label folder untouched this long is stale
SECOND_YEAR_CHECK = "second-year check"  # the reviewer recorded on changes the next year withdrew


@dataclass(frozen=True)
class InferenceInputs:
    """What the year's inference job waits for (``missing``), or its template values."""

    missing: tuple[str, ...]
    values: dict[str, Any] | None


def map_years(config: AOIConfig, year: int) -> list[int]:
    """The cube years a map year reads: the previous and this one (just this one in the first year)."""
    return [year - 1, year] if year > config.first_year else [year]


def run_key(model_id: str, fingerprints: list[str]) -> str:
    """A key of the job's inputs: a re-run with the same model and cubes reuses finished blocks."""
    return hashlib.sha256(json.dumps([model_id, fingerprints]).encode()).hexdigest()[:12]


def inference_inputs(
    catalog: SceneCatalog, config: AOIConfig, year: int, data: Path, venv: str, model_id: str | None = None
) -> InferenceInputs:
    """Checks the year's inputs in the store; the inference job's values once all exist.

    Each cube's file is checked against its checksum first; a cube that no longer matches is
    marked for rebuild (the preprocess step's ``years_to_build`` picks it up) and reported missing,
    with the reason.

    Args:
        catalog: The store's catalog (cubes and models).
        config: The AOI.
        year: The map year.
        data: The platform's data root.
        venv: The compute environment on the cluster.
        model_id: A pinned model (it must be approved); None: the newest approved model.
    """
    years = map_years(config, year)
    problems = {y: catalog.verify_datacube(config.name, y) for y in years}
    fingerprints = [catalog.datacube_fingerprint(config.name, y) for y in years]
    model = approved_model(catalog.conn, config.name, model_id)
    has_previous = year == config.first_year or map_cog_path(catalog.conn, config.name, year - 1) is not None
    missing = [
        f"cube {y}" + (f" (rebuild by preprocess_{config.name}: {problems[y]})" if problems[y] else "")
        for y, f in zip(years, fingerprints, strict=True)
        if f is None
    ]
    wanted = f"model {model_id}" if model_id else f"a model (train_{config.name})"
    missing += [] if model else [f"{wanted}, approved"]
    missing += [] if has_previous else [f"the map of {year - 1} (make it first)"]
    if missing or model is None:
        return InferenceInputs(tuple(missing), None)
    key = run_key(model[0], [str(f) for f in fingerprints])
    values = {
        **config.hpc.job_values(venv),
        "job_name": f"infer-{config.name}-{year}",
        "array_tasks": config.maps.array_tasks,
        "model_id": model[0],
        "model_dir": model[1],
        "cubes": [str(cube_path(data, config.name, y)) for y in years],
        "out_dir": str(MapPaths.for_year(data, config.name, year).labels / key),
        "block_px": config.maps.block_px,
        "window": config.maps.changes.window,
        "year": year,
    }
    return InferenceInputs((), values)


def assemble_year(
    conn: PgConnection,
    config: AOIConfig,
    values: dict[str, Any],
    data: Path,
    lock_wait_s: float = YEAR_LOCK_WAIT_S,
) -> annual_maps.StoredYear:
    """The year's map and changes from the job's labels, written to files, STAC and PostGIS.

    The whole assembly holds the AOI-year's lock, and the previous year's (whose map it reads): a
    second run of the same year (a catchup and a backfill, two manual runs) or a review of one of
    these maps waits for it, then reads the stored state the first one left.
    Other runs' label folders of the year (another model or other cubes) are removed after the
    year is stored, under the lock, once nothing touched them for :data:`LABELS_KEEP_S`: a run
    marks its folder when it starts assembling, and an inference job writes into its folder, so an
    overlapping run's labels are never removed under it.

    Args:
        conn: The PostGIS store.
        config: The AOI.
        values: The inference job's values (:func:`inference_inputs`).
        data: The platform's data root.
        lock_wait_s: How long to wait for another run writing the same year.

    Raises:
        ConcurrentRunError: Another run kept the year locked for longer than ``lock_wait_s``.
        ServiceUnavailableError: The store went away; the previous map stays current.
        CatalogError: A cube no longer matches its checksum (it is marked for rebuild).
    """
    year, start = int(values["year"]), time.perf_counter()
    labels = Path(values["out_dir"])
    if labels.is_dir():
        os.utime(labels)  # in use: no other run removes it while this one waits for the lock
    with ExitStack() as locks:  # the previous year too: its map (and its reviews) must not change meanwhile
        for locked in map_years(config, year):
            locks.enter_context(year_lock(conn, config.name, locked, lock_wait_s))
        stored = _assemble(conn, config, values, data, lock_wait_s)
        _remove_stale_labels(labels)
    log.info(
        "%s %d: %d changes (%d px) in %.1f s; class areas (ha): %s; map %s",
        config.name,
        year,
        stored.changes,
        stored.changed_pixels,
        time.perf_counter() - start,
        {k: round(v, 1) for k, v in stored.class_areas_ha.items() if v},
        stored.map_path,
    )
    return stored


def year_result(
    series: annual_maps.LabelSeries,
    previous: np.ndarray | None,
    cubes: list[Cube],
    card: dict[str, Any],
    params: ChangeParams,
    year_before: Cube | None = None,
    last: confirmation.LastChanges | None = None,
    workers: int = 1,
    settled: np.ndarray | None = None,
) -> tuple[annual_maps.YearResult, list[int]]:
    """A year's map and changes from its window labels: the label-sequence analysis, then the dating.

    Under platform rules the year then confirms the previous year's changes
    (:mod:`eo_tasks.maps.confirmation`): if it withdraws some, it is analysed again on the previous
    map without them. Changes into tree cover are dropped last
    (:func:`~eo_tasks.maps.annual_maps.without_tree_cover_gains`).

    Args:
        series: The inference job's labels.
        previous: The previous year's stored map; None for the first year (no changes).
        cubes: The cubes the windows slid over, oldest first.
        card: The model card (its normalization scales the features the dating compares).
        params: The analysis settings.
        year_before: The cube of the year before ``cubes`` (year-on-year anomalies of its first year).
        last: The previous year's unreviewed changes, for this year to confirm.
        workers: Processes the change regions are dated in (``maps.dating_workers``).
        settled: Where ``previous`` differs from the map of the year before it (the previous
            year's changes, reviewed ones too): not looked for again with ``year_before``
            (:func:`~eo_tasks.maps.spectral_changes.add_spectral_changes`).

    Returns:
        The year's result, and the numbers (in ``last.regions``) of the changes withdrawn.
    """
    if previous is None:
        return annual_maps.first_year_map(series, params.rules), []
    scale = np.asarray(card["normalization"]["std"], dtype=np.float32)
    indices = include_indices(card, cubes[0].band_names)
    result = _next_year(series, previous, cubes, scale, indices, params, year_before, settled, workers)
    if params.rules != "platform":
        return result, []
    numbers: list[int] = []
    if last is not None:
        numbers, mistaken = confirmation.second_year_check(last, result, cubes, year_before, scale, indices)
        if numbers:
            previous = confirmation.withdrawn(previous, last, numbers)
            result = _next_year(
                series, previous, cubes, scale, indices, params, year_before, settled, workers
            )
        result = annual_maps.without(result, mistaken & (result.to_class == last.from_class))
    return annual_maps.without_tree_cover_gains(result, params.ath), numbers


def _next_year(
    series: annual_maps.LabelSeries,
    previous: np.ndarray,
    cubes: list[Cube],
    scale: np.ndarray,
    indices: bool,
    params: ChangeParams,
    year_before: Cube | None,
    settled: np.ndarray | None,
    workers: int,
) -> annual_maps.YearResult:
    result = annual_maps.next_year_map(series, previous, params)
    if params.rules == "platform" and len(cubes) > 1:
        result = spectral_changes.add_spectral_changes(
            result, cubes, scale, indices, params.ath, year_before, settled
        )
    return region_dating.refine_dates(result, cubes, scale, indices, params, year_before, workers)[0]


def _assemble(
    conn: PgConnection, config: AOIConfig, values: dict[str, Any], data: Path, lock_wait_s: float
) -> annual_maps.StoredYear:
    year = int(values["year"])
    catalog = SceneCatalog(conn)
    for cube_year in map_years(config, year):
        problem = catalog.verify_datacube(config.name, cube_year)
        if problem:
            raise CatalogError(
                f"{config.name} {year}: {problem}; the cube is marked for rebuild "
                f"(preprocess_{config.name}) and no map was made from it"
            )
    series = annual_maps.read_labels(Path(values["out_dir"]), config.grid, config.maps.block_px)
    cubes = [Cube.open(Path(p)) for p in values["cubes"]]
    card = read_card(Path(values["model_dir"]))
    previous, last, last_ids = None, None, list[int]()
    if year > config.first_year:
        previous = annual_maps.previous_map(conn, config.name, year - 1)
        last, last_ids = _last_changes(conn, config, year - 1, previous)
    params, before = config.maps.changes, _year_before(catalog, config, year, data)
    settled = None if before is None or previous is None else _settled(conn, config, year - 1, previous)
    workers = config.maps.dating_workers
    result, withdrawn = year_result(series, previous, cubes, card, params, before, last, workers, settled)
    for number in withdrawn:  # the previous map loses it (and the rows say why), then this year is stored
        apply_review(conn, Review(last_ids[number - 1], "reject", SECOND_YEAR_CHECK), lock_wait_s)
    if withdrawn:
        log.info(
            "%s %d: withdrew %d of the %d unreviewed changes of %d (turned back within a year, "
            "the ground as before them): ids %s",
            config.name,
            year,
            len(withdrawn),
            len(last_ids),
            year - 1,
            [last_ids[n - 1] for n in withdrawn],
        )
    scenes = sorted({s for cube in cubes for s in json.loads(cube.attrs["scenes"])})
    provenance = {
        "model_card": str(Path(values["model_dir"]) / "model_card.json"),
        "cubes": values["cubes"],
        "scenes": scenes,
    }
    return annual_maps.store_year(
        conn,
        config.name,
        year,
        config.grid,
        result,
        series.annual,
        data,
        values["model_id"],
        provenance,
        lock_wait_s,
    )


def _last_changes(
    conn: PgConnection, config: AOIConfig, year: int, previous: np.ndarray
) -> tuple[confirmation.LastChanges, list[int]]:
    """The unreviewed changes of ``year`` where its stored map holds them, and their ids."""
    rows = pending_changes(conn, config.name, year, config.grid.epsg)
    numbers = polygon_numbers([row["wkt"] for row in rows], config.grid)
    epoch = annual_maps.EPOCH
    table = np.array(  # per change number (row 0: outside all): to, from, date
        [(-1, 0, 0), *((r["to_class"], r["from_class"], (r["change_date"] - epoch).days) for r in rows)],
        np.int64,
    )
    held = (numbers > 0) & (previous == table[numbers, 0])  # where the stored map still holds it
    regions = np.where(held, numbers, 0).astype(np.int32)
    from_class = np.where(held, table[numbers, 1], previous).astype(previous.dtype)
    days = np.where(held, table[numbers, 2], 0)
    return confirmation.LastChanges(regions, from_class, days), [int(row["id"]) for row in rows]


def _settled(conn: PgConnection, config: AOIConfig, year: int, stored: np.ndarray) -> np.ndarray:
    """Where the stored map of ``year`` differs from the year before's (everywhere if that is gone)."""
    try:
        return np.asarray(stored != annual_maps.previous_map(conn, config.name, year - 1))
    except IncompleteOutputError as err:
        log.warning("%s: %s; the changes of %d are not looked for again", config.name, err, year)
        return np.ones(stored.shape, bool)


def _year_before(catalog: SceneCatalog, config: AOIConfig, year: int, data: Path) -> Cube | None:
    """The cube of ``year - 2`` for year-on-year anomalies: None when absent or failing its checksum.

    It only sharpens the dates of changes in the series' first year, so a missing or stale one is
    logged and done without, never a reason to stop the map.
    """
    path = cube_path(data, config.name, year - 2)
    if year - 2 < config.first_year or not path.is_file():
        return None
    problem = catalog.verify_datacube(config.name, year - 2)
    if problem:
        log.warning("%s %d: the cube of %d is not used for dating: %s", config.name, year, year - 2, problem)
        return None
    return Cube.open(path)


def _newest_mtime(folder: Path) -> float:
    return max([folder.stat().st_mtime, *(p.stat().st_mtime for p in folder.iterdir())])


def _remove_stale_labels(labels: Path) -> None:
    """Removes the year's other label folders untouched for :data:`LABELS_KEEP_S` (under the year's lock)."""
    if not labels.parent.is_dir():
        return
    cutoff = time.time() - LABELS_KEEP_S
    for other in labels.parent.iterdir():
        if other == labels or not other.is_dir():
            continue
        try:
            if _newest_mtime(other) < cutoff:
                shutil.rmtree(other, ignore_errors=True)
                log.info("removed the stale label folder %s", other)
        except FileNotFoundError:
            continue  # removed meanwhile
