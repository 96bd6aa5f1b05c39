"""Planted events and the truth they leave: permanent changes, look-alikes, the reference map.

Change detection can only be scored against changes whose place and date are known, and it is
only useful if it ignores what merely looks like change. So the simulator plants both: permanent
changes (clear-cuts, landslides, new buildings, a new water body), several of them late in a year
so the "change in late year Y belongs to map Y" rule is exercised, and seasonal events that must
*not* be reported (winter snow on high grass, shrubs and rock; crop rotation; a month-long flood).
The reference map is the first year's truth degraded the way real products are (blocky
boundaries, whole patches mislabeled), with every wrong pixel recorded, so the training-set stage
can be scored on how many planted label errors it rejects (reference.py).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from eo_simulator.landscape import Landscape, dilate, smooth_noise
from eo_simulator.spectra import SURFACE_CLASS, Surface, mixture, surface_fractions
from eo_tasks.core.classes import CLASS_BY_NAME

MIN_EVENT_PIXELS = 120
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
        size_factor: Multiplies the scene's usual change size (a quarry is large, a house small).
        lead_days: Days before the recorded date from which the new ground shows (a gradual
            change is dated when it is half-way: ``fractions`` then gets negative days).
        months: First and last month in which it can happen (ice melts out in summer); None: any.
    """

    name: str
    from_surfaces: tuple[Surface, ...]
    to_class: str
    description: str
    fractions: Callable[[int, float], np.ndarray]
    size_factor: float = 1.0
    lead_days: int = 0
    months: tuple[int, int] | None = None

    def dated(self, day: date) -> date:
        """``day`` moved into the process's months (first/last month, same year), if it has any."""
        if self.months is None or self.months[0] <= day.month <= self.months[1]:
            return day
        return day.replace(
            month=self.months[0] if day.month < self.months[0] else self.months[1], day=min(day.day, 28)
        )

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
        shown = self.start - timedelta(days=self.process.lead_days)
        return shown <= day and (self.end is None or day < self.end)


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


def place_region(
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
    rng: np.random.Generator,
    landscape: Landscape,
    years: tuple[int, ...],
    n_changes: int,
    cycle: tuple[tuple[Process, ...], ...] | None = None,
    *,
    min_pixels: int = MIN_EVENT_PIXELS,
    flood: bool = True,
) -> list[PlantedEvent]:
    """Places the permanent changes and the temporary flood inside the AOI.

    Args:
        rng: Random generator.
        landscape: The landscape at the start of the series.
        years: The simulated years.
        n_changes: Number of permanent changes wanted. Their kinds cycle through ``cycle``;
            when a kind's land is too scarce (a small scene, another landscape) to hold
            ``min_pixels`` pixels, the next kind is tried, and failing all, the change is dropped.
        cycle: The kinds, each a group of variants of one process (tried in turn, starting from
            a different one each time the kind comes up); None: PERMANENT_PROCESSES.
        min_pixels: Smallest permanent change (and flood) kept.
        flood: Whether to plant the month-long flood.

    Returns:
        Permanent changes (ids ``change-NN``) then the flood (``flood-01``), in that order.
    """
    kinds = cycle if cycle is not None else tuple((process,) for process in PERMANENT_PROCESSES)
    aoi_rows, aoi_cols = landscape.aoi
    aoi_area = (aoi_rows.stop - aoi_rows.start) * (aoi_cols.stop - aoi_cols.start)
    target = int(np.clip(aoi_area // 150, 150, 1200))
    occupied = ~landscape.aoi_mask(border=3)
    irregularity = smooth_noise(rng, landscape.grid.shape, 3.0)
    events: list[PlantedEvent] = []

    def place(process: Process, candidates: np.ndarray) -> np.ndarray:
        size = max(min_pixels, int(target * process.size_factor * rng.uniform(0.8, 1.3)))
        pixels = place_region(rng, candidates & ~occupied, size, irregularity)
        if pixels.size >= min_pixels:
            region = np.zeros(landscape.grid.shape, dtype=bool)
            region.flat[pixels] = True
            occupied[dilate(region, 2)] = True
        return pixels

    # The flood goes first: in a small scene the changes would leave no fields near the river.
    cropland = landscape.surface == Surface.CROPLAND
    near_water = dilate(landscape.surface == Surface.WATER, 12)
    candidates = cropland & near_water if (cropland & near_water & ~occupied).sum() > target else cropland
    pixels = place(FLOOD, candidates) if flood else np.empty(0, dtype=np.int64)
    floods = []
    if pixels.size >= min_pixels:
        start = date(int(rng.choice(years)), 5, 1) + timedelta(days=int(rng.integers(45)))
        end = start + timedelta(days=int(rng.integers(25, 36)))
        floods.append(PlantedEvent("flood-01", "seasonal", FLOOD, start, end, pixels))

    for i, day in enumerate(_permanent_dates(rng, years, n_changes)):
        for step in range(len(kinds)):
            variants = kinds[(i + step) % len(kinds)]
            process, pixels = _place_kind(variants, i // len(kinds), place, landscape.surface, min_pixels)
            if pixels.size >= min_pixels:
                event_id = f"change-{len(events) + 1:02d}"
                events.append(PlantedEvent(event_id, "permanent", process, process.dated(day), None, pixels))
                break
    return events + floods


def _place_kind(
    variants: tuple[Process, ...],
    turn: int,
    place: Callable[[Process, np.ndarray], np.ndarray],
    surface: np.ndarray,
    min_pixels: int,
) -> tuple[Process, np.ndarray]:
    """Tries the variants of one kind, the most abundant land first (the next one each ``turn``)."""
    if len(variants) > 1:
        area = [-int(np.isin(surface, v.from_surfaces).sum()) for v in variants]
        variants = tuple(variants[k] for k in np.argsort(area, kind="stable"))
    for k in range(len(variants)):
        process = variants[(turn + k) % len(variants)]
        pixels = place(process, np.isin(surface, process.from_surfaces))
        if pixels.size >= min_pixels:
            break
    return process, pixels


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
