"""Look-alikes: seasonal and temporary events that change what the sensors see, never the truth class.

``ScenarioConfig.lookalikes`` names them (empty: the default scenario's flood, snow and crop
rotation). Each is recorded in changes.json with kind ``seasonal`` and its process name:

- ``crop_rotation``: the crop of a parcel changes between years (always there where crops are).
- ``ploughing``: a meadow and a cropland patch lie as bare soil for 1–2 months.
- ``seasonal_flood``: fields near the water flooded for about a month (the default flood).
- ``snow_year``: one winter with snow for 6–10 weeks down to the lowest ground, in every
  landscape (open land fully covered, forests and towns partly), on top of the usual snowline.
- ``drought_year``: one summer in which grass, crops and shrubs brown early and strongly (up to
  70 % of the green cover turns to dry vegetation).
- ``deciduous_shrubs``: part of the shrubland is deciduous, leafless from November to April so
  that it looks like dry grass or bare ground (laid out by ``landscape.build_landscape``).
"""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from typing import Any

import numpy as np

from eo_simulator.events import PlantedEvent, Process, place_region
from eo_simulator.landscape import Anomaly, Landscape, dilate, smooth_noise
from eo_simulator.records import record
from eo_simulator.spectra import ENDMEMBER_INDEX, SURFACE_CLASS, Surface, mixture

LOOKALIKES = ("crop_rotation", "ploughing", "seasonal_flood", "snow_year", "drought_year", "deciduous_shrubs")
DROUGHT_BROWNING = 0.7
DROUGHT_SURFACES = (
    Surface.MEADOW,
    Surface.ALPINE_GRASS,
    Surface.DRY_GRASS,
    Surface.SHRUB,
    Surface.MAQUIS,
    Surface.DECIDUOUS_SHRUB,
)
# Snow cover a snow year gives each surface (the rest, water and wetlands, stays open).
SNOW_YEAR_COVER: dict[Surface, float] = {
    Surface.URBAN: 0.5,
    Surface.CROPLAND: 1.0,
    Surface.MEADOW: 1.0,
    Surface.ALPINE_GRASS: 1.0,
    Surface.BROADLEAF: 0.35,
    Surface.CONIFER: 0.25,
    Surface.SHRUB: 0.9,
    Surface.ROCK: 1.0,
    Surface.MAQUIS: 0.7,
    Surface.DRY_GRASS: 1.0,
    Surface.OPEN_WOODLAND: 0.6,
    Surface.SAND: 1.0,
    Surface.DECIDUOUS_SHRUB: 1.0,
}
SNOW_YEAR_TABLE = np.array([SNOW_YEAR_COVER.get(s, 0.0) for s in Surface], dtype=np.float32)


def brown_table(table: np.ndarray, landscape: Landscape, day: date) -> np.ndarray:
    """Applies an active drought to the fraction table rows of grass, shrub and crop units."""
    for anomaly in landscape.anomalies:
        strength = DROUGHT_BROWNING * anomaly.strength(day) if anomaly.name == "drought_year" else 0.0
        if strength <= 0.0:
            continue
        table = table.copy()
        crops = np.arange(len(Surface), len(Surface) + landscape.n_parcels)
        rows = np.concatenate([np.array(DROUGHT_SURFACES, dtype=np.int64), crops])
        for member in ("green_leaf", "shrub"):
            moved = table[rows, ENDMEMBER_INDEX[member]] * strength * (0.6 if member == "shrub" else 1.0)
            table[rows, ENDMEMBER_INDEX[member]] -= moved
            table[rows, ENDMEMBER_INDEX["dry_vegetation"]] += moved
    return table


def snow_year_cover(landscape: Landscape, day: date) -> np.ndarray | None:
    """Snow cover per pixel of an active snow year, or None when there is none."""
    strength = max((a.strength(day) for a in landscape.anomalies if a.name == "snow_year"), default=0.0)
    return None if strength <= 0.0 else SNOW_YEAR_TABLE[landscape.surface] * strength


PLOUGHING = (
    Process(
        "ploughing",
        (Surface.MEADOW,),
        "bare",
        "meadow ploughed: bare soil for 1-2 months",
        lambda d, y: mixture("soil", dry_vegetation=0.1),
    ),
    Process(
        "ploughing",
        (Surface.CROPLAND,),
        "bare",
        "field ploughed: bare soil for 1-2 months",
        lambda d, y: mixture("soil", dry_vegetation=0.05),
    ),
)


def plant_lookalikes(
    rng: np.random.Generator,
    landscape: Landscape,
    events: list[PlantedEvent],
    years: tuple[int, ...],
    names: tuple[str, ...],
) -> tuple[Landscape, list[PlantedEvent]]:
    """Plants the ploughing events and the anomalies (snow year, drought year) of a scenario.

    Args:
        rng: Random generator (its own stream: the other events do not move).
        landscape: The landscape.
        events: The events already planted (ploughing keeps clear of them).
        years: The simulated years.
        names: The look-alikes wanted.

    Returns:
        The landscape with its anomalies, and the ploughing events (ids ``ploughing-NN``).
    """
    anomalies = []
    if "snow_year" in names:
        year = int(rng.choice(years[1:] or years))
        start = date(year - 1, 12, 5) + timedelta(days=int(rng.integers(20)))
        anomalies.append(Anomaly("snow_year", start, start + timedelta(days=int(rng.integers(42, 71)))))
    if "drought_year" in names:
        start = date(int(rng.choice(years)), 6, 1) + timedelta(days=int(rng.integers(20)))
        anomalies.append(
            Anomaly("drought_year", start, date(start.year, 9, 20) + timedelta(days=int(rng.integers(15))))
        )
    ploughed: list[PlantedEvent] = []
    if "ploughing" in names:
        rows, cols = landscape.aoi
        target = int(np.clip((rows.stop - rows.start) * (cols.stop - cols.start) // 150, 150, 1200))
        occupied = ~landscape.aoi_mask(border=3)
        for event in events:
            occupied.flat[event.pixels] = True
        occupied = dilate(occupied, 2)
        irregularity = smooth_noise(rng, landscape.grid.shape, 3.0)
        for process, month in zip(PLOUGHING, (9, 3), strict=True):
            candidates = (landscape.surface == process.from_surfaces[0]) & ~occupied
            pixels = place_region(rng, candidates, target, irregularity) if candidates.any() else np.empty(0)
            if pixels.size < 100:
                continue
            start = date(int(rng.choice(years)), month, 1) + timedelta(days=int(rng.integers(30)))
            end = start + timedelta(days=int(rng.integers(30, 61)))
            ploughed.append(
                PlantedEvent(f"ploughing-{len(ploughed) + 1:02d}", "seasonal", process, start, end, pixels)
            )
            occupied.flat[pixels] = True
    return dataclasses.replace(landscape, anomalies=tuple(anomalies)), ploughed


def lookalike_records(landscape: Landscape, years: tuple[int, ...]) -> list[dict[str, Any]]:
    """changes.json entries of the anomalies and the deciduous shrubs' winters, one per class."""
    in_aoi = landscape.aoi_mask()
    records = []
    for anomaly in landscape.anomalies:
        if anomaly.name == "snow_year":
            surfaces = [s for s in Surface if SNOW_YEAR_COVER.get(s, 0.0) >= 0.5]
            to_class, what = "snow_ice", "snow far lower and longer than usual"
        else:
            surfaces = [Surface.CROPLAND, *DROUGHT_SURFACES]
            to_class, what = "bare", "early, strong browning of grass, crops and shrubs"
        for class_name in sorted({SURFACE_CLASS[s] for s in surfaces}):
            mask = in_aoi & np.isin(
                landscape.surface, [s for s in surfaces if SURFACE_CLASS[s] == class_name]
            )
            if mask.any():
                records.append(
                    _lookalike(
                        landscape, mask, anomaly.name, class_name, to_class, anomaly.start, anomaly.end, what
                    )
                )
    mask = in_aoi & (landscape.surface == Surface.DECIDUOUS_SHRUB)
    if mask.any():
        for year in (years[0] - 1, *years):
            what = "deciduous shrubs leafless in winter"
            records.append(
                _lookalike(
                    landscape,
                    mask,
                    "deciduous_shrubs",
                    "shrubland",
                    "grassland",
                    date(year, 10, 25),
                    date(year + 1, 4, 25),
                    what,
                )
            )
    return records


def _lookalike(
    landscape: Landscape,
    mask: np.ndarray,
    process: str,
    from_class: str,
    to_class: str,
    start: date,
    end: date,
    what: str,
) -> dict[str, Any]:
    return record(
        landscape,
        mask,
        event_id=f"{process}-{start.year}-{from_class}",
        kind="seasonal",
        process=process,
        from_class=from_class,
        to_class=to_class,
        start=start,
        end=end,
        description=f"{what} (the class does not change)",
    )
