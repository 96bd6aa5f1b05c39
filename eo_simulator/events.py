"""Planted events and the truth they leave: permanent changes, look-alikes, the reference map.

Change detection can only be scored against changes whose place and date are known, and it is
only useful if it ignores what merely looks like change. So the simulator plants both: permanent
changes (clear-cuts, landslides, new buildings, a new water body), several of them late in a year
so the "change in late year Y belongs to map Y" rule is exercised, and seasonal events that must
*not* be reported (winter snow on high grass, shrubs and rock; crop rotation; a month-long flood).
The reference map is the first year's truth degraded the way real products are (blocky
boundaries, whole patches mislabeled), with every wrong pixel recorded, so the training-set stage
can be scored on how many planted label errors it rejects.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np

from eo_simulator.landscape import SNOWABLE, Landscape, dilate, smooth_noise
from eo_simulator.spectra import (
    CROPS,
    SNOW_TRANSITION,
    SURFACE_CLASS,
    Surface,
    mixture,
    snowline_rank,
    surface_fractions,
)
from eo_tasks.core.classes import CLASS_BY_CODE, CLASS_BY_NAME

MIN_EVENT_PIXELS = 120
REFERENCE_BLOCK_PX = 3  # the reference's boundaries follow a 30 m grid
EPOCH = date(1970, 1, 1)


def _clearcut_fractions(days_since: int, doy: float) -> np.ndarray:
    slash = mixture("soil", dry_vegetation=0.5, green_leaf=0.05)
    regrown = float(np.clip((days_since - 60) / 180.0, 0.0, 1.0))
    return (1.0 - regrown) * slash + regrown * surface_fractions(Surface.MEADOW, doy)


def _landslide_fractions(days_since: int, doy: float) -> np.ndarray:
    return mixture("soil", rock=0.35, dry_vegetation=0.05)


def _construction_fractions(days_since: int, doy: float) -> np.ndarray:
    if days_since < 90:
        return mixture("soil", urban=0.3)
    return mixture("urban", soil=0.1)


def _new_water_fractions(days_since: int, doy: float) -> np.ndarray:
    return mixture("soil", water=0.5) if days_since < 20 else mixture("water")


def _flood_fractions(days_since: int, doy: float) -> np.ndarray:
    return mixture("water", green_leaf=0.15)


@dataclass(frozen=True)
class Process:
    """A kind of planted event: what it replaces, what it becomes, and how that looks over time.

    Attributes:
        name: Short identifier, recorded in changes.json.
        from_surfaces: Surface types it may start from (all of one platform class).
        to_class: Platform class afterwards (for a seasonal event: while it lasts).
        description: One line for people reading changes.json.
        fractions: ``(days since the event, day of year) → end-member fractions`` of the new ground.
    """

    name: str
    from_surfaces: tuple[Surface, ...]
    to_class: str
    description: str
    fractions: Callable[[int, float], np.ndarray]

    @property
    def from_class(self) -> str:
        """The platform class the event starts from."""
        return SURFACE_CLASS[self.from_surfaces[0]]


FORESTS = (Surface.BROADLEAF, Surface.CONIFER)
PERMANENT_PROCESSES: tuple[Process, ...] = (
    Process(
        "clearcut", FORESTS, "grassland", "forest clear-cut, slash then regrowing grass", _clearcut_fractions
    ),
    Process(
        "construction", (Surface.CROPLAND,), "artificial", "new buildings on fields", _construction_fractions
    ),
    Process("new_water", (Surface.CROPLAND,), "water", "new water body dug in fields", _new_water_fractions),
    Process("landslide", FORESTS, "bare", "landslide strips forest to soil and rock", _landslide_fractions),
    Process(
        "construction", (Surface.MEADOW,), "artificial", "new buildings on a meadow", _construction_fractions
    ),
)
FLOOD = Process(
    "flood", (Surface.CROPLAND,), "water", "fields under water for about a month", _flood_fractions
)


@dataclass(frozen=True, eq=False)
class PlantedEvent:
    """An event that changes what the sensors see on a set of pixels.

    Attributes:
        id: Unique id in changes.json.
        kind: ``permanent`` or ``seasonal``.
        process: What happens.
        start: First day of the new state.
        end: First day back to the old state (``None`` for permanent changes).
        pixels: Flat indices into the landscape grid.
    """

    id: str
    kind: str
    process: Process
    start: date
    end: date | None
    pixels: np.ndarray

    def active(self, day: date) -> bool:
        """Whether the pixels show the new state on ``day``."""
        return self.start <= day and (self.end is None or day < self.end)


def _grow_region(candidates: np.ndarray, seed: int, target: int, irregularity: np.ndarray) -> np.ndarray:
    """Grows a connected region of ``candidates`` from ``seed``, nearest (noisily) first."""
    height, width = candidates.shape
    seed_row, seed_col = divmod(seed, width)
    seen = {seed}
    frontier: list[tuple[float, int]] = [(0.0, seed)]
    region: list[int] = []
    while frontier and len(region) < target:
        index = heapq.heappop(frontier)[1]
        region.append(index)
        row, col = divmod(index, width)
        for nrow, ncol in ((row - 1, col), (row + 1, col), (row, col - 1), (row, col + 1)):
            neighbour = nrow * width + ncol
            if 0 <= nrow < height and 0 <= ncol < width and neighbour not in seen and candidates[nrow, ncol]:
                seen.add(neighbour)
                distance = math.hypot(nrow - seed_row, ncol - seed_col)
                heapq.heappush(frontier, (distance * math.exp(0.5 * irregularity[nrow, ncol]), neighbour))
    return np.array(sorted(region), dtype=np.int64)


def _place_region(
    rng: np.random.Generator, candidates: np.ndarray, target: int, irregularity: np.ndarray
) -> np.ndarray:
    """The largest region (up to ``target`` pixels) grown from a few random seeds."""
    flat = np.flatnonzero(candidates)
    best = np.empty(0, dtype=np.int64)
    for seed in rng.choice(flat, size=min(8, flat.size), replace=False):
        region = _grow_region(candidates, int(seed), target, irregularity)
        if region.size > best.size:
            best = region
        if best.size >= target:
            break
    return best


def _permanent_dates(rng: np.random.Generator, years: tuple[int, ...], count: int) -> list[date]:
    """Distinct change dates, alternating between April–mid September and October–early December.

    The mid-year ones cycle through the years from the last one back; the late ones fall in a year
    before the last one when there is one, so they stay visible for a while.
    """
    late_years = years[:-1] or years
    dates: list[date] = []
    while len(dates) < count:
        if len(dates) % 2:
            start, span = date(int(rng.choice(late_years)), 10, 1), 70
        else:
            start, span = date(years[-1 - (len(dates) // 2) % len(years)], 4, 1), 167
        day = start + timedelta(days=int(rng.integers(span)))
        if day not in dates:
            dates.append(day)
    return dates


def plant_events(
    rng: np.random.Generator, landscape: Landscape, years: tuple[int, ...], n_changes: int
) -> list[PlantedEvent]:
    """Places the permanent changes and the temporary flood inside the AOI.

    Args:
        rng: Random generator.
        landscape: The landscape at the start of the series.
        years: The simulated years.
        n_changes: Number of permanent changes wanted. Their kinds cycle through
            PERMANENT_PROCESSES; when a kind's land is too scarce (a small scene) to hold
            MIN_EVENT_PIXELS pixels, the next kind is tried, and failing all, the change is dropped.

    Returns:
        Permanent changes (ids ``change-NN``) then the flood (``flood-01``), in that order.
    """
    aoi_rows, aoi_cols = landscape.aoi
    aoi_area = (aoi_rows.stop - aoi_rows.start) * (aoi_cols.stop - aoi_cols.start)
    target = int(np.clip(aoi_area // 150, 150, 1200))
    occupied = ~landscape.aoi_mask(border=3)
    irregularity = smooth_noise(rng, landscape.grid.shape, 3.0)
    events: list[PlantedEvent] = []

    def place(process: Process, candidates: np.ndarray) -> np.ndarray:
        pixels = _place_region(rng, candidates & ~occupied, int(target * rng.uniform(0.8, 1.3)), irregularity)
        if pixels.size >= MIN_EVENT_PIXELS:
            region = np.zeros(landscape.grid.shape, dtype=bool)
            region.flat[pixels] = True
            occupied[dilate(region, 2)] = True
        return pixels

    # The flood goes first: in a small scene the changes would leave no fields near the river.
    cropland = landscape.surface == Surface.CROPLAND
    near_water = dilate(landscape.surface == Surface.WATER, 12)
    candidates = cropland & near_water if (cropland & near_water & ~occupied).sum() > target else cropland
    pixels = place(FLOOD, candidates)
    floods = []
    if pixels.size >= MIN_EVENT_PIXELS:
        start = date(int(rng.choice(years)), 5, 1) + timedelta(days=int(rng.integers(45)))
        end = start + timedelta(days=int(rng.integers(25, 36)))
        floods.append(PlantedEvent("flood-01", "seasonal", FLOOD, start, end, pixels))

    for i, day in enumerate(_permanent_dates(rng, years, n_changes)):
        for step in range(len(PERMANENT_PROCESSES)):
            process = PERMANENT_PROCESSES[(i + step) % len(PERMANENT_PROCESSES)]
            pixels = place(process, np.isin(landscape.surface, process.from_surfaces))
            if pixels.size >= MIN_EVENT_PIXELS:
                event_id = f"change-{len(events) + 1:02d}"
                events.append(PlantedEvent(event_id, "permanent", process, day, None, pixels))
                break
    return events + floods


CLASS_CODE_OF_SURFACE = np.array([CLASS_BY_NAME[SURFACE_CLASS[s]].code for s in Surface], dtype=np.uint8)


def landcover(landscape: Landscape, events: list[PlantedEvent], year: int) -> np.ndarray:
    """True platform class per AOI pixel on December 31 of ``year``."""
    classes = CLASS_CODE_OF_SURFACE[landscape.surface]
    for event in events:
        if event.kind == "permanent" and event.start <= date(year, 12, 31):
            classes.flat[event.pixels] = CLASS_BY_NAME[event.process.to_class].code
    return np.ascontiguousarray(classes[landscape.aoi])


def change_rasters(landscape: Landscape, events: list[PlantedEvent]) -> tuple[np.ndarray, np.ndarray]:
    """The permanent-change mask (uint8) and date (int32 days since 1970-01-01, 0 = none) on the AOI."""
    days = np.zeros(landscape.grid.shape, dtype=np.int32)
    for event in events:
        if event.kind == "permanent":
            days.flat[event.pixels] = (event.start - EPOCH).days
    days = np.ascontiguousarray(days[landscape.aoi])
    return (days > 0).astype(np.uint8), days


def _record(
    landscape: Landscape,
    mask: np.ndarray,
    *,
    event_id: str,
    kind: str,
    process: str,
    from_class: str,
    to_class: str,
    start: date,
    end: date | None,
    description: str,
) -> dict[str, Any]:
    rows, cols = np.nonzero(mask)
    return {
        "id": event_id,
        "kind": kind,
        "process": process,
        "from_class": from_class,
        "to_class": to_class,
        "date": start.isoformat(),
        "end_date": None if end is None else end.isoformat(),
        "bbox": landscape.grid.cell_bounds(rows, cols),
        "n_pixels": int(rows.size),
        "description": description,
    }


def _snow_records(landscape: Landscape, years: tuple[int, ...]) -> list[dict[str, Any]]:
    """One seasonal event per winter and snow-covered class (the snow never changes the class)."""
    in_aoi = landscape.aoi_mask()
    lowest_snowline = min(snowline_rank(doy) for doy in range(1, 367))
    covered = in_aoi & (landscape.elevation_rank >= lowest_snowline + SNOW_TRANSITION / 2)
    records = []
    for year in (years[0] - 1, *years):
        days = [date(year, 8, 1) + timedelta(days=d) for d in range(365)]
        lines = np.array([snowline_rank(day.timetuple().tm_yday) for day in days])
        for surface in SNOWABLE:
            mask = covered & (landscape.surface == surface)
            if not mask.any():
                continue
            snowy = np.flatnonzero(lines <= landscape.elevation_rank[mask].max() - SNOW_TRANSITION / 2)
            class_name = SURFACE_CLASS[surface]
            records.append(
                _record(
                    landscape,
                    mask,
                    event_id=f"snow-{year}-{surface.name.lower()}",
                    kind="seasonal",
                    process="snow",
                    from_class=class_name,
                    to_class="snow_ice",
                    start=days[snowy[0]],
                    end=days[snowy[-1]] + timedelta(days=1),
                    description=f"winter snow cover on {class_name} (the class does not change)",
                )
            )
    return records


def _rotation_records(
    landscape: Landscape, events: list[PlantedEvent], years: tuple[int, ...]
) -> list[dict[str, Any]]:
    """One seasonal event per year for the parcels whose crop differs from the year before."""
    records = []
    crop_pixels = landscape.aoi_mask() & (landscape.surface == Surface.CROPLAND)
    parcel_of_pixel = np.where(crop_pixels, landscape.units - len(Surface), 0)
    for year in years:
        column = year - landscape.first_crop_year
        rotated = landscape.crop_sequence[:, column] != landscape.crop_sequence[:, column - 1]
        still_cropland = CLASS_CODE_OF_SURFACE[landscape.surface] == CLASS_BY_NAME["cropland"].code
        for event in events:
            if event.kind == "permanent" and event.start.year <= year:
                still_cropland.flat[event.pixels] = False
        mask = crop_pixels & still_cropland & rotated[parcel_of_pixel]
        if mask.any():
            crops = ", ".join(c.name for c in CROPS)
            records.append(
                _record(
                    landscape,
                    mask,
                    event_id=f"rotation-{year}",
                    kind="seasonal",
                    process="crop_rotation",
                    from_class="cropland",
                    to_class="cropland",
                    start=date(year, 1, 1),
                    end=None,
                    description=f"crop rotation into {year} among {crops} (still cropland)",
                )
            )
    return records


def event_records(
    landscape: Landscape, events: list[PlantedEvent], years: tuple[int, ...]
) -> list[dict[str, Any]]:
    """Every planted event as a changes.json entry (bbox in the AOI CRS, pixels inside the AOI).

    Args:
        landscape: The landscape.
        events: The rendered events (permanent changes and the flood).
        years: The simulated years.

    Returns:
        Entries with ``id, kind, process, from_class, to_class, date, end_date, bbox, n_pixels,
        description``.
    """
    records = []
    for event in events:
        mask = np.zeros(landscape.grid.shape, dtype=bool)
        mask.flat[event.pixels] = True
        records.append(
            _record(
                landscape,
                mask,
                event_id=event.id,
                kind=event.kind,
                process=event.process.name,
                from_class=event.process.from_class,
                to_class=event.process.to_class,
                start=event.start,
                end=event.end,
                description=event.process.description,
            )
        )
    return records + _snow_records(landscape, years) + _rotation_records(landscape, events, years)


# Plausible confusions of a land-cover product, by true class.
CONFUSIONS: dict[str, tuple[str, ...]] = {
    "artificial": ("bare", "cropland"),
    "cropland": ("grassland", "bare"),
    "grassland": ("cropland", "shrubland"),
    "tree_cover": ("shrubland", "grassland"),
    "shrubland": ("tree_cover", "grassland"),
    "bare": ("grassland", "snow_ice"),
    "snow_ice": ("bare",),
    "water": ("wetland",),
    "wetland": ("grassland", "water"),
}
REFERENCE_PLANTED_ERROR = 1
REFERENCE_BOUNDARY_ERROR = 2


def block_mode(classes: np.ndarray, block: int) -> np.ndarray:
    """Replaces each ``block``×``block`` block by its most frequent class (ties: lowest code)."""
    height, width = classes.shape
    padded = np.pad(classes, ((0, -height % block), (0, -width % block)), mode="edge")
    blocks = padded.reshape(padded.shape[0] // block, block, padded.shape[1] // block, block)
    counts = np.stack([(blocks == code).sum(axis=(1, 3)) for code in range(int(classes.max()) + 1)])
    mode = counts.argmax(axis=0).astype(classes.dtype)
    return np.ascontiguousarray(np.repeat(np.repeat(mode, block, 0), block, 1)[:height, :width])


def _mislabeled_patch(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[slice, slice, np.ndarray]:
    """An irregular blob 5–13 px across: its window and the mask inside the window."""
    radius = rng.uniform(2.5, 6.5)
    row, col = rng.integers(0, shape[0]), rng.integers(0, shape[1])
    reach = math.ceil(radius * 1.4)
    rows = slice(max(0, row - reach), min(shape[0], row + reach + 1))
    cols = slice(max(0, col - reach), min(shape[1], col + reach + 1))
    dy, dx = np.mgrid[rows, cols]
    dy, dx = dy - row, dx - col
    wobble = 1.0 + 0.35 * np.sin(3.0 * np.arctan2(dy, dx) + rng.uniform(0, 2 * math.pi))
    return rows, cols, (dy**2 + dx**2) <= (radius * wobble) ** 2


def degrade_reference(
    rng: np.random.Generator, truth: np.ndarray, error_fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    """Turns a true class map into a realistic reference product.

    Boundaries are coarsened (mode over REFERENCE_BLOCK_PX blocks: thin features such as roads and
    the river break up), then whole small patches get a wrong but plausible class (CONFUSIONS)
    until ``error_fraction`` of the pixels carry a planted error.

    Args:
        rng: Random generator.
        truth: Platform class codes.
        error_fraction: Share of pixels to mislabel in patches.

    Returns:
        The reference in platform codes, and the error codes per pixel: 0 correct,
        REFERENCE_PLANTED_ERROR in a mislabeled patch, REFERENCE_BOUNDARY_ERROR from coarsening.
    """
    reference = block_mode(truth, REFERENCE_BLOCK_PX)
    patched = np.zeros(truth.shape, dtype=bool)
    wanted = round(error_fraction * truth.size)
    for _ in range(100 * (wanted // 20 + 1)):
        if np.count_nonzero(patched & (reference != truth)) >= wanted:
            break
        rows, cols, blob = _mislabeled_patch(rng, truth.shape)
        present = truth[rows, cols][blob]
        majority = CLASS_BY_CODE[int(np.bincount(present).argmax())].name
        wrong = CLASS_BY_NAME[str(rng.choice(CONFUSIONS[majority]))].code
        reference[rows, cols][blob] = wrong
        patched[rows, cols][blob] = True
    wrong_pixels = reference != truth
    errors = np.where(patched, REFERENCE_PLANTED_ERROR, REFERENCE_BOUNDARY_ERROR) * wrong_pixels
    return reference, errors.astype(np.uint8)
