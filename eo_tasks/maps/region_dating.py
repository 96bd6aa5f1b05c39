"""Dating each change region of a year on the cubes, and dropping the flips its ground never made.

The regions are dated block by block: each block's window of the cubes (the block, the ground
around its regions, the year before the series) is read once and held in memory, and each region's
pixels and, under platform rules, the unchanged ground of its old class around it are taken from it
(:mod:`eo_tasks.maps.spectra`); :func:`eo_tasks.maps.dating.region_evidence` dates each and
measures how lasting its change is. The blocks can be dated in worker processes (``maps.dating_workers``):
each gets its regions, the year's result around them and the cubes' metadata, and reads its own window.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np

from eo_tasks.core.aoi_sections import ChangeParams
from eo_tasks.core.classes import CLASS_BY_NAME
from eo_tasks.core.cube import Cube, HeldWindow
from eo_tasks.core.processes import detached_main
from eo_tasks.maps.annual_maps import YearResult, changed_days, without
from eo_tasks.maps.dating import MIN_LASTING_ANOMALY, RegionEvidence, region_evidence
from eo_tasks.maps.feature_breaks import open_water_bounds
from eo_tasks.maps.lasting_breaks import indices_with_nir, is_snow
from eo_tasks.maps.spectra import (
    REFERENCE_PAD_PX,
    landscape_anomaly,
    reference_box,
    reference_pixels,
    region_series_and_before,
)

log = logging.getLogger(__name__)
CROPLAND = CLASS_BY_NAME["cropland"].code
WATER, WETLAND = CLASS_BY_NAME["water"].code, CLASS_BY_NAME["wetland"].code
LOG_EVERY_S = 30.0  # a progress line at most this often while regions are dated
# New ground on a field that a harvest looks like (bare soil first): dated on the labels where the
# year before the features' break is unknown (:func:`eo_tasks.maps.dating.region_evidence`).
HARVEST_LIKE = (CLASS_BY_NAME["artificial"].code, CLASS_BY_NAME["bare"].code)
# A change region of fewer pixels is a fragment, dated with a large region within FRAGMENT_REACH_PX
# pixels of it (:func:`borrowed_dates`).
FRAGMENT_PX = 20
FRAGMENT_REACH_PX = 2
# Regions are dated block by block of this many pixels (by the corner of their box), from one
# window of the cubes held in memory; it reaches READ_MARGIN_PX past the block, for regions that run
# out of it (one reaching further is read from the file). At most 32 + 256 + 64 + 32 = 384 px a
# side: about 70 MB of int16 a cube of 24 composites and 10 bands.
READ_BLOCK_PX = 256
READ_MARGIN_PX = 64


def dating_regions(result: YearResult, date_bin: int) -> np.ndarray:
    """Connected change regions to date one by one (labels 1..n, 0 elsewhere).

    With ``date_bin`` > 0 (platform rules), a region is also split where the labels' dates fall
    in different bins of ``date_bin // 2`` composites: a fire in August next to a quarry opened in
    November are two events, and one median series of both would date neither.
    """
    from scipy import ndimage

    eight = np.ones((3, 3), dtype=bool)
    if date_bin <= 0:
        return np.asarray(ndimage.label(result.changed, structure=eight)[0])
    bins = np.where(result.changed, result.change_composite // max(date_bin // 2, 1), -1)
    regions, offset = np.zeros(bins.shape, np.int32), 0
    for value in np.unique(bins[bins >= 0]):
        labels, n = ndimage.label(bins == value, structure=eight)
        regions = np.where(labels > 0, labels + offset, regions)
        offset += n
    return regions


def refine_dates(
    result: YearResult,
    cubes: Sequence[Cube],
    scale: np.ndarray,
    include_indices: bool,
    params: ChangeParams,
    year_before: Cube | None = None,
    workers: int = 1,
) -> tuple[YearResult, list[RegionEvidence]]:
    """Dates each change region at its spectral break; with ``platform`` rules, drops passing flips.

    Published rules: the break of the region's median features inside its first flipped window
    (ending ``window // 2`` after the half-window rule's date). Platform rules: the break of the
    year-on-year anomaly where the year before is known (``year_before`` supplies it for the
    series' first year), and a region whose anomaly does not stay at least
    :data:`MIN_LASTING_ANOMALY` after its break is no change (its pixels keep the previous map).
    A fragment takes the date of the large region it borders (:func:`borrowed_dates`).

    Args:
        result: The year's result from :func:`eo_tasks.maps.annual_maps.next_year_map`.
        cubes: The cubes the windows slid over, oldest first.
        scale: Per-feature scale (the model card's normalization std).
        include_indices: Whether the features include the spectral indices.
        params: The analysis settings (``window``, ``rules``).
        year_before: The cube of the year before ``cubes``, if there is one.
        workers: Processes dating blocks at once (1: this process).

    Returns:
        The result with refined dates (and, with platform rules, without passing flips), and
        the evidence of every region found.
    """
    from scipy import ndimage

    platform = params.rules == "platform"
    window, per_year = params.window, cubes[-1].shape[0]
    regions = dating_regions(result, window if platform else 0)
    composite = result.change_composite.copy()
    changed = result.changed.copy()
    evidence: list[RegionEvidence] = []
    boxes = ndimage.find_objects(regions)
    old_classes: dict[int, int] = {}
    anomaly_dates: dict[int, int] = {}
    setting = _Setting(list(cubes), year_before, scale, include_indices, window, per_year, platform)
    started = last_line = time.monotonic()
    for index, old_class, found in _dated_block_by_block(regions, boxes, result, setting, workers):
        if time.monotonic() - last_line >= LOG_EVERY_S:
            last_line = time.monotonic()
            rate = len(evidence) / (last_line - started)
            log.info("dating: %d of %d regions, %.1f regions/s", len(evidence), len(boxes), rate)
        box = boxes[index - 1]
        assert box is not None  # a region that was dated has a box
        where = regions[box] == index
        old_classes[index] = old_class
        evidence.append(found)
        composite[box][where] = found.composite
        if found.anomaly_dated:
            anomaly_dates[index] = found.composite
        if platform and found.lasting < MIN_LASTING_ANOMALY:  # NaN (unknown) compares False: kept
            changed[box][where] = False
    seconds = time.monotonic() - started
    where_run = "this process" if workers <= 1 else f"{workers} worker processes"
    log.info("dating: %d regions in %.1f s (%s)", len(evidence), seconds, where_run)
    if platform:
        for fragment, borrowed in borrowed_dates(regions, old_classes, anomaly_dates).items():
            box = boxes[fragment - 1]
            composite[box][regions[box] == fragment] = borrowed
    dates = [d for cube in cubes for d in cube.dates]
    dated = replace(
        result, change_composite=composite, change_days=changed_days(composite, result.changed, dates)
    )
    return without(dated, result.changed & ~changed), evidence


@dataclass(frozen=True)
class _Setting:
    """What every block's dating shares (cubes as metadata: each process reads its own windows)."""

    cubes: list[Cube]
    year_before: Cube | None
    scale: np.ndarray
    include_indices: bool
    window: int
    per_year: int
    platform: bool


@dataclass(frozen=True)
class _Block:
    """One block's regions, the window of the cubes to hold, and the year's result around them.

    ``regions``, ``changed``, ``from_class``, ``to_class`` and ``composite`` are cut to the union
    of the regions' :func:`reference_box`, whose corner is ``origin``; boxes stay in grid pixels.
    """

    setting: _Setting
    rows: slice
    cols: slice
    boxes: list[tuple[int, tuple[slice, slice]]]
    shape: tuple[int, int]
    origin: tuple[int, int]
    regions: np.ndarray
    changed: np.ndarray
    from_class: np.ndarray
    to_class: np.ndarray
    composite: np.ndarray

    def local(self, box: tuple[slice, slice]) -> tuple[slice, slice]:
        """A grid box in the cut arrays."""
        (r0, c0), (rows, cols) = self.origin, box
        return slice(rows.start - r0, rows.stop - r0), slice(cols.start - c0, cols.stop - c0)


def _date_block(block: _Block) -> list[tuple[int, int, RegionEvidence]]:
    """``(region, old class, evidence)`` of each of a block's regions (in a worker process, or not)."""
    s = block.setting
    held = [HeldWindow.read_from(cube, block.rows, block.cols) for cube in s.cubes]
    held_before = HeldWindow.read_from(s.year_before, block.rows, block.cols) if s.year_before else None
    out = []
    for index, box in block.boxes:
        mine = block.local(box)
        where = block.regions[mine] == index
        series, before = region_series_and_before(held, held_before, box, where, s.scale, s.include_indices)
        flip_end = int(np.median(block.composite[mine][where])) + s.window // 2
        landscape = neighbours = None
        old_class = int(np.bincount(block.from_class[mine][where].astype(np.int64)).argmax())
        if s.platform:
            around = reference_box(box, block.shape)
            near = block.local(around)
            stable = ~block.changed[near] & (block.from_class[near] == old_class)
            reference = reference_pixels(held, held_before, around, stable, s.scale, s.include_indices)
            if reference is not None:
                landscape = landscape_anomaly(*reference, s.per_year)
                if s.year_before is None and old_class != CROPLAND:  # its neighbours' crops change next year
                    neighbours = reference[0]
        new_class = int(np.bincount(block.to_class[mine][where].astype(np.int64)).argmax())
        field = old_class == CROPLAND
        new_water = s.platform and new_class == WATER and old_class not in (WATER, WETLAND)
        found = region_evidence(
            series,
            before,
            s.per_year,
            flip_end,
            s.window,
            s.platform,
            landscape,
            neighbours,
            like_a_harvest=field and new_class in HARVEST_LIKE,
            field=field,
            bounds=_water_bounds(series, s) if new_water else None,
        )
        out.append((index, old_class, found))
    return out


def _water_bounds(series: np.ndarray, setting: _Setting) -> tuple[int, int] | None:
    """:func:`~eo_tasks.maps.feature_breaks.open_water_bounds` of a region's median scaled features.

    On ``nir08``, the near infrared both sensors observe: in a composite only Landsat observed, the
    cube's ``nir`` (B08) is filled in time from the Sentinel-2 composites around it.
    """
    names = setting.cubes[0].band_names
    reflectance = series[:, : len(names)] * setting.scale[: len(names)]
    indices = indices_with_nir(reflectance, names, nir_band="nir08")
    hidden = ~np.isfinite(series[:, 0]) | is_snow(indices["ndsi"], indices["nir"])
    return open_water_bounds(np.where(hidden, np.nan, indices["ndwi"]), setting.window)


def _blocks(
    regions: np.ndarray, boxes: Sequence[tuple[slice, slice] | None], result: YearResult, setting: _Setting
) -> Iterator[_Block]:
    """The regions grouped by the block their box starts in, each group with what it reads.

    A block's window of the cubes is the union of its regions' boxes widened by
    :data:`REFERENCE_PAD_PX`, cut :data:`READ_MARGIN_PX` past the block's far edges (a region
    reaching further is read from the file); one window at a time is in memory in each process.
    The year's result is cut to the union of the regions' :func:`reference_box`.
    """
    shape = (int(regions.shape[0]), int(regions.shape[1]))

    def block_of(item: tuple[int, tuple[slice, slice]]) -> tuple[int, int]:
        return item[1][0].start // READ_BLOCK_PX, item[1][1].start // READ_BLOCK_PX

    def span(axis: int, group: list[tuple[int, tuple[slice, slice]]], block: int) -> slice:
        far = (block + 1) * READ_BLOCK_PX + READ_MARGIN_PX
        start = min(box[axis].start for _, box in group)
        stop = max(box[axis].stop for _, box in group)
        return slice(max(0, start - REFERENCE_PAD_PX), min(shape[axis], min(far, stop) + REFERENCE_PAD_PX))

    def reach(axis: int, group: list[tuple[int, tuple[slice, slice]]]) -> slice:
        around = [reference_box(box, shape)[axis] for _, box in group]
        return slice(min(a.start for a in around), max(a.stop for a in around))

    located = sorted(((i, b) for i, b in enumerate(boxes, 1) if b is not None), key=block_of)
    for block, members in itertools.groupby(located, key=block_of):
        group = list(members)
        cut = reach(0, group), reach(1, group)
        yield _Block(
            setting,
            span(0, group, block[0]),
            span(1, group, block[1]),
            group,
            shape,
            (cut[0].start, cut[1].start),
            regions[cut],
            result.changed[cut],
            result.from_class[cut],
            result.to_class[cut],
            result.change_composite[cut],
        )


def _dated_block_by_block(
    regions: np.ndarray,
    boxes: Sequence[tuple[slice, slice] | None],
    result: YearResult,
    setting: _Setting,
    workers: int,
) -> Iterator[tuple[int, int, RegionEvidence]]:
    """Every region's ``(region, old class, evidence)``, block by block, in order.

    With ``workers`` > 1 the blocks are dated in that many spawned processes (their main module
    detached: inside an Airflow task it is the ``airflow`` entry point), at most two blocks per
    worker waiting at a time, so memory stays that of a few blocks whatever the AOI.
    """
    blocks = _blocks(regions, boxes, result, setting)
    if workers <= 1:
        for block in blocks:
            yield from _date_block(block)
        return
    import multiprocessing
    from collections import deque
    from concurrent.futures import Future, ProcessPoolExecutor

    with (
        detached_main(),
        ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool,
    ):
        waiting: deque[Future[list[tuple[int, int, RegionEvidence]]]] = deque()
        for block in blocks:
            waiting.append(pool.submit(_date_block, block))
            if len(waiting) >= 2 * workers:
                yield from waiting.popleft().result()
        while waiting:
            yield from waiting.popleft().result()


def borrowed_dates(
    regions: np.ndarray, old_classes: dict[int, int], anomaly_dates: dict[int, int]
) -> dict[int, int]:
    """The date each fragment of a change takes from the large region it borders.

    The labels flip a few edge pixels of a windthrow or a quarry a window later than the rest, or
    leave them apart; they form regions of a few pixels, whose median series (a handful of mixed
    pixels) dates at a season or a cloud. A region of fewer than :data:`FRAGMENT_PX` pixels within
    :data:`FRAGMENT_REACH_PX` of a region of at least that size with the same old class, dated on its
    anomaly, takes that region's date (the largest one's, where it borders several); whether its
    own change lasts is still its own evidence's.

    Args:
        regions: ``(rows, cols)`` change regions, labels 1..n (0 elsewhere).
        old_classes: Each region's old class (the most common among its pixels).
        anomaly_dates: The composite of each region dated on its anomaly (or against its neighbours).

    Returns:
        The composite each fragment takes, by region label.
    """
    from scipy import ndimage

    sizes = np.bincount(regions.ravel())
    reach = FRAGMENT_REACH_PX
    borrowed: dict[int, int] = {}
    for index, box in enumerate(ndimage.find_objects(regions), 1):
        if box is None or sizes[index] >= FRAGMENT_PX:
            continue
        around = tuple(slice(max(0, b.start - reach), b.stop + reach) for b in box)
        mine = regions[around] == index
        near = np.unique(regions[around][ndimage.binary_dilation(mine, iterations=reach)])
        large = [
            int(n)
            for n in near
            if sizes[n] >= FRAGMENT_PX and n in anomaly_dates and old_classes[n] == old_classes[index]
        ]
        if large:
            borrowed[index] = anomaly_dates[max(large, key=lambda n: sizes[n])]
    return borrowed
