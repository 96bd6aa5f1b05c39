"""From the inference job's label sequences to a year's consistent land-cover map and its changes.

A year's map is the previous year's map with the permanent changes found since embedded at their
dates (Sedona et al. 2023), so consecutive maps differ only where the land changed:

- year ``Y`` after the first: the windows slide over the cubes of ``Y − 1`` and ``Y``; the
  label sequence is compared with the stored map of ``Y − 1`` (``eo_tasks.maps.changes``); kept changes
  are embedded into it. A change dated late in ``Y − 1`` that only became certain in ``Y`` is found
  here, dated in ``Y − 1``, and carried back into that map once a reviewer approves it.
- the first year: there is no previous map; the map is the per-year classifier's label of the
  year's whole series (the paper's initial annual map; with ``rules: platform`` the label of its
  first window), and it holds no changes.
- each change region is then dated at the break of its spectral series inside the first window
  whose label flipped (:func:`eo_tasks.maps.region_dating.refine_dates`).
- with ``rules: platform``, year ``Y`` also confirms the unreviewed changes of ``Y − 1``. One
  that ``Y``'s labels turn back to its old class within a year of its date
  (:mod:`eo_tasks.maps.confirmation`) is withdrawn when the ground looks again as before it (a meadow
  ploughed in October read as a new field, green again in spring): the maps pipeline rejects it
  in the store, so ``Y − 1``'s map loses it and ``Y``'s records no change back. When the ground
  does not (rock left by a glacier, called snow again in winter), the turn back is dropped instead.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from eo_tasks.core.aoi_sections import ChangeParams
from eo_tasks.core.classes import CLASS_BY_NAME, NODATA_CLASS
from eo_tasks.core.errors import ConfigError, IncompleteOutputError, ServiceUnavailableError
from eo_tasks.core.grid import Block, GridSpec, blocks
from eo_tasks.maps import versions
from eo_tasks.maps.changes import analyse_sequences, drop_small_regions
from eo_tasks.maps.infer import BLOCK_FILE
from eo_tasks.store import maps as maps_store

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

EPOCH = dt.date(1970, 1, 1)
TREE_COVER = CLASS_BY_NAME["tree_cover"].code
CHUNK_PX = 1 << 16  # pixels analysed at a time: ~40 MB of working memory at 48 positions


@dataclass(frozen=True)
class LabelSeries:
    """The inference job's output for a map year, read block by block (never the whole AOI at once).

    Attributes:
        annual: ``(rows, cols)`` the map year's label from its whole series in one window (baseline).
        composite_dates: Date of every composite of the series, oldest first.
        window: ``w``.
        model_id: The model that labelled them.
        tiles: The blocks the AOI is read in.
        read: A block's ``(positions, rows, cols)`` class codes; position ``k`` is the window ending
            at composite ``window - 1 + k``.
    """

    annual: np.ndarray
    composite_dates: list[dt.date]
    window: int
    model_id: str
    tiles: tuple[Block, ...]
    read: Callable[[Block], np.ndarray]

    @classmethod
    def from_array(
        cls,
        labels: np.ndarray,
        annual: np.ndarray,
        composite_dates: list[dt.date],
        window: int,
        model_id: str,
        block_px: int = 256,
    ) -> LabelSeries:
        """A series held in memory (``labels``: ``(positions, rows, cols)``), read in blocks."""
        rows, cols = annual.shape
        tiles = tuple(
            Block(r, c, min(block_px, rows - r), min(block_px, cols - c))
            for r in range(0, rows, block_px)
            for c in range(0, cols, block_px)
        )
        return cls(
            annual,
            composite_dates,
            window,
            model_id,
            tiles,
            lambda b: labels[:, _window(b)[0], _window(b)[1]],
        )

    def mosaic(self) -> np.ndarray:
        """All positions over the whole AOI (small AOIs and tests only: it is positions × pixels)."""
        parts = {b: self.read(b) for b in self.tiles}
        positions = next(iter(parts.values())).shape[0]
        out = np.zeros((positions, *self.annual.shape), np.uint8)
        for block, part in parts.items():
            out[(slice(None), *_window(block))] = part
        return out


def _window(block: Block) -> tuple[slice, slice]:
    return slice(block.row0, block.row0 + block.rows), slice(block.col0, block.col0 + block.cols)


def read_labels(labels_dir: Path, grid: GridSpec, block_px: int) -> LabelSeries:
    """Opens the block files of an inference run: the annual map and attributes now, labels per block later.

    Raises:
        IncompleteOutputError: A block is missing (a task of the array failed): nothing is used.
    """
    import h5py

    tiles = tuple(blocks(grid, block_px))
    paths = {b: labels_dir / BLOCK_FILE.format(row0=b.row0, col0=b.col0) for b in tiles}
    missing = [p for p in paths.values() if not p.is_file()]
    if missing:
        raise IncompleteOutputError(f"{missing[0]} is missing: the inference job did not finish its blocks")
    annual = np.zeros(grid.shape, np.uint8)
    attrs: dict[str, Any] = {}
    for block, path in paths.items():
        with h5py.File(path, "r") as f:
            attrs = attrs or dict(f.attrs)
            annual[_window(block)] = f["annual"][:]

    def read(block: Block) -> np.ndarray:
        with h5py.File(paths[block], "r") as f:
            return np.asarray(f["labels"][:], dtype=np.uint8)

    return LabelSeries(
        annual=annual,
        composite_dates=[dt.date.fromisoformat(d) for d in json.loads(attrs["composite_dates"])],
        window=int(attrs["window"]),
        model_id=str(attrs["model_id"]),
        tiles=tiles,
        read=read,
    )


@dataclass(frozen=True)
class YearResult:
    """A year's map and its permanent changes.

    Attributes:
        classes: ``(rows, cols)`` the annual map.
        changed: ``(rows, cols)`` permanent changes kept (region size ≥ ``ath``).
        from_class: ``(rows, cols)`` class before (the previous map).
        to_class: ``(rows, cols)`` class after (equal to ``from_class`` where unchanged).
        change_days: ``(rows, cols)`` change date, days since 1970-01-01 (0 where unchanged).
        change_composite: ``(rows, cols)`` change date as composite index of the series (−1 where unchanged).
    """

    classes: np.ndarray
    changed: np.ndarray
    from_class: np.ndarray
    to_class: np.ndarray
    change_days: np.ndarray
    change_composite: np.ndarray


def composite_days(composite: np.ndarray, dates: Sequence[dt.date]) -> np.ndarray:
    """Composite indices (−1: none) as dates in days since 1970-01-01 (0: none)."""
    days_of = np.array([(d - EPOCH).days for d in dates], dtype=np.int32)
    return np.where(composite >= 0, days_of[np.clip(composite, 0, len(dates) - 1)], 0).astype(np.int32)


def first_year_map(series: LabelSeries, rules: str = "published") -> YearResult:
    """The first year's map, with no changes: the initial map later years are compared with.

    Published rules: the per-year classifier's label of the year's whole series (the paper); a
    change in the year's second half is then part of the initial state and never reported.
    Platform rules: the label of the year's first window (its first ``w`` composites, e.g.
    January to July): the state around the middle of the year, so a change later in the year
    (a quarry opened in October) is found by the next year's run.
    """
    classes = series.annual.copy()
    if rules == "platform":
        for block in series.tiles:
            first = series.read(block)[0]
            where = _window(block)
            classes[where] = np.where(first != NODATA_CLASS, first, classes[where])
    none = np.zeros(classes.shape, dtype=bool)
    return YearResult(
        classes,
        none,
        classes,
        classes,
        np.zeros(classes.shape, np.int32),
        np.full(classes.shape, -1, np.int32),
    )


def next_year_map(series: LabelSeries, previous: np.ndarray, params: ChangeParams) -> YearResult:
    """The map of a year after the first: the previous map with the permanent changes embedded.

    The label sequences are analysed block by block, in chunks of at most ``CHUNK_PX`` pixels, so
    the working memory is that of a chunk; only the per-pixel outputs span the AOI.

    Args:
        series: Labels of the windows over the previous and this year's composites.
        previous: ``(rows, cols)`` the stored map of the previous year (reviews included).
        params: ``w``, ``p``, ``ath`` (the series' window must equal ``params.window``).

    Returns:
        The year's map and changes.
    """
    if series.window != params.window:
        raise ConfigError(f"labels from windows of {series.window}, the analysis expects {params.window}")
    previous = previous.astype(np.uint8)
    candidate = np.zeros(previous.shape, dtype=bool)
    to_class = previous.copy()
    composite = np.full(previous.shape, -1, np.int32)
    for block in series.tiles:
        window = _window(block)
        labels = series.read(block)
        labels = labels.reshape(labels.shape[0], -1)
        initial = previous[window].ravel()
        found = np.zeros(initial.size, bool), initial.copy(), np.full(initial.size, -1, np.int32)
        for start in range(0, initial.size, CHUNK_PX):
            part = slice(start, start + CHUNK_PX)
            result = analyse_sequences(labels[:, part], initial[part], params)
            found[0][part] = (
                result.changed & (initial[part] != NODATA_CLASS) & (result.to_class != NODATA_CLASS)
            )
            found[1][part] = result.to_class
            found[2][part] = result.date_composite
        candidate[window], to_class[window], composite[window] = (
            a.reshape(block.rows, block.cols) for a in found
        )
    changed = drop_small_regions(candidate, params.ath, max(series.tiles[0].rows, series.tiles[0].cols))
    last = len(series.composite_dates) - 1
    applies = changed & (composite >= 0) & (composite <= last)
    composite = np.where(changed, composite, -1).astype(np.int32)
    return YearResult(
        classes=np.where(applies, to_class, previous).astype(np.uint8),
        changed=changed,
        from_class=previous,
        to_class=np.where(changed, to_class, previous).astype(np.uint8),
        change_days=changed_days(composite, changed, series.composite_dates),
        change_composite=composite,
    )


def without(result: YearResult, drop: np.ndarray) -> YearResult:
    """The result with the changes at ``drop`` undone: those pixels keep the previous map's class."""
    changed = result.changed & ~drop
    return YearResult(
        classes=np.where(result.changed & drop, result.from_class, result.classes),
        changed=changed,
        from_class=result.from_class,
        to_class=np.where(changed, result.to_class, result.from_class),
        change_days=np.where(changed, result.change_days, 0),
        change_composite=np.where(changed, result.change_composite, -1).astype(np.int32),
    )


def without_tree_cover_gains(result: YearResult, ath: int) -> YearResult:
    """The result without changes *into* tree cover (platform rules), nor regions left under ``ath`` px.

    Trees take years to close a canopy, so a label that flips to tree cover within a window's
    reach is the classifier's mistake, not new forest: a meadow that stays green through a wet
    summer after a dry one, shrubs in full leaf, a first map that called young trees shrubland.
    Gradual gains of tree cover are therefore not reported. The previous year's changes are
    confirmed first: a stand its labels turn back to within a year is what withdraws a false clearing.
    """
    gains = result.changed & (result.to_class == TREE_COVER)
    return without(result, gains | ~drop_small_regions(result.changed & ~gains, ath))


def changed_days(composite: np.ndarray, changed: np.ndarray, dates: Sequence[dt.date]) -> np.ndarray:
    """:func:`composite_days` with temporaries the size of the changed pixels only (0 elsewhere)."""
    days = np.zeros(composite.shape, np.int32)
    days[changed] = composite_days(composite[changed], dates)
    return days


@dataclass(frozen=True)
class StoredYear:
    """What :func:`store_year` wrote (a small, JSON-friendly summary for logs and XCom)."""

    aoi: str
    year: int
    map_path: str
    changes: int
    changed_pixels: int
    class_areas_ha: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        """The summary as plain data."""
        return dict(self.__dict__)


def store_year(
    conn: PgConnection,
    aoi: str,
    year: int,
    grid: GridSpec,
    result: YearResult,
    annual: np.ndarray,
    data_dir: Path,
    model_id: str | None,
    provenance: dict[str, Any],
    lock_wait_s: float = maps_store.YEAR_LOCK_WAIT_S,
) -> StoredYear:
    """Writes a year's files as a new version and switches the rows, STAC item and pointer to it.

    Under the AOI-year's lock (one writer at a time): one transaction updates the year's change
    rows (each change keeps its id and review), puts the reviews' decisions into the map's pixels,
    writes every file into a new version folder and points ``lc_map`` at it. After the commit the
    year's STAC item and ``CURRENT`` pointer name the new version and older versions are removed.
    A failure before the commit removes the new folder: the previous version's files, rows and
    STAC item stay exactly as they were.

    Args:
        conn: The PostGIS store.
        aoi: AOI name.
        year: Map year.
        grid: The AOI grid.
        result: The year's map and changes.
        annual: The per-year classifier's map (baseline), kept next to the map for evaluation.
        data_dir: The platform's data directory.
        model_id: The model the labels came from.
        provenance: Links for the STAC item: ``model_card``, ``cubes``, ``scenes``.
        lock_wait_s: How long to wait for another run writing the same year.

    Returns:
        The summary.

    Raises:
        ConcurrentRunError: Another run kept the year locked for longer than ``lock_wait_s``.
        ServiceUnavailableError: The store went away; nothing was switched.
    """
    from eo_tasks.maps.outputs import MapPaths, change_regions, class_areas
    from eo_tasks.maps.plots import write_summary_plot
    from eo_tasks.maps.stac import write_year_item

    regions = change_regions(result.changed, result.from_class, result.to_class, result.change_days, grid)
    with maps_store.year_lock(conn, aoi, year, lock_wait_s):
        paths = MapPaths.new_version(data_dir, aoi, year)
        committing = False
        try:
            with maps_store.year_transaction(conn, aoi, year) as cur:
                maps_store.sync_changes(cur, aoi, year, grid, regions)
                reviewed = maps_store.reviewed_changes(cur, aoi, year, grid.epsg)
                classes = versions.apply_reviews(result.classes, reviewed, year, grid)
                areas = class_areas(classes, grid.resolution)
                detected = {
                    "changed": result.changed,
                    "days": result.change_days,
                    "from_class": result.from_class,
                    "to_class": result.to_class,
                }
                versions.write_files(paths, classes, detected, annual, grid)
                maps_store.upsert_map(cur, aoi, year, str(paths.classes), model_id, areas, grid)
                committing = True
        except BaseException as err:
            # Nothing points at the new files, unless the connection died during the commit (it may
            # have gone through): then they stay, and the next run of the year removes them if unused.
            if not (committing and isinstance(err, ServiceUnavailableError)):
                shutil.rmtree(paths.folder, ignore_errors=True)
            raise
        write_year_item(data_dir, aoi, year, grid, paths, model_id, provenance, len(regions), regions)
        versions.switch_current(paths)
        versions.remove_old_versions(paths)
    write_summary_plot(data_dir, aoi)
    changed = int(result.changed.sum())
    return StoredYear(aoi, year, str(paths.classes), len(regions), changed, areas)


def previous_map(conn: PgConnection, aoi: str, year: int) -> np.ndarray:
    """The stored map of ``year`` (reviews included), for the next year's analysis.

    Raises:
        IncompleteOutputError: The year has no map yet (years are made one at a time, in order).
    """
    from eo_tasks.maps.review import read_class_map

    cog_path = maps_store.map_cog_path(conn, aoi, year)
    if cog_path is None or not Path(cog_path).is_file():
        raise IncompleteOutputError(
            f"{aoi} has no map of {year}: make the years in order (it is needed first)"
        )
    return read_class_map(cog_path)[0]
