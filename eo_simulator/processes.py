"""The registry of permanent change processes a scenario can plant (``ScenarioConfig.change_processes``).

Each name maps to one or more *variants* (the same process on different land, each variant's
surfaces all of one platform class); a scenario's changes cycle through its names as the default
scenario's cycle through ``events.PERMANENT_PROCESSES``, and a name whose land is absent from the
landscape (no glacier in the lowlands) is skipped for the next. Truth classes and dates:

- ``windthrow``: forest → **grassland**: fallen trunks and dry wood, then grass grows through
  within a season (salvaged stands are not replanted in the series), like a clear-cut's truth.
- ``clearcut``: forest → grassland (slash, then regrowing grass).
- ``fire``: forest or shrubland → **bare** for the whole series: char (dark, NIR below SWIR),
  then ash fading and a slow, sparse green-up that stays below a third of the cover.
- ``construction``: fields or meadow → artificial; small (about 300 px at 256²).
- ``quarry``: grassland or forest → bare: bright rock and soil; large (about 1,000 px at 256²).
- ``reservoir``: cropland or meadow → water, filling over six weeks (water from about day 21).
- ``glacier_retreat``: glacier → bare: the ice melts out in a month and rock is exposed; dated
  in July–September only (a date drawn outside moves to the nearest of those months).
- ``shrub_encroachment``: grassland → shrubland, **gradual**: the shrub cover rises linearly
  from 0 to 1 over 240 days; the recorded date (truth date) is the day it passes one half, so the
  ground starts changing 120 days before that date (``Process.lead_days``).
- ``landslide``: forest → bare (soil and rock); ``new_water``: fields → water (dug).

Every variant's ``size_factor`` scales the scene's usual change size; the planted change is never
smaller than ``MIN_CHANGE_PIXELS`` (the platform drops regions under 100 px).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from eo_simulator.events import Process
from eo_simulator.spectra import Surface, mixture, surface_fractions

MIN_CHANGE_PIXELS = 150
FORESTS = (Surface.BROADLEAF, Surface.CONIFER, Surface.OPEN_WOODLAND)
SHRUBS = (Surface.SHRUB, Surface.MAQUIS, Surface.DECIDUOUS_SHRUB)
GRASSES = (Surface.MEADOW, Surface.DRY_GRASS, Surface.ALPINE_GRASS)
ENCROACHMENT_DAYS = 240
CONSTRUCTION_SIZE = 0.7
QUARRY_SIZE = 2.5


def _regrowth(days_since: int, doy: float, start: int, span: float) -> float:
    return float(np.clip((days_since - start) / span, 0.0, 1.0))


def _windthrow(days_since: int, doy: float) -> np.ndarray:
    fallen = mixture("soil", dry_vegetation=0.45, leafless=0.3, green_leaf=0.1)
    regrown = _regrowth(days_since, doy, 90, 240.0)
    return (1.0 - regrown) * fallen + regrown * surface_fractions(Surface.MEADOW, doy)


def _clearcut(days_since: int, doy: float) -> np.ndarray:
    slash = mixture("soil", dry_vegetation=0.5, green_leaf=0.05)
    regrown = _regrowth(days_since, doy, 60, 180.0)
    return (1.0 - regrown) * slash + regrown * surface_fractions(Surface.MEADOW, doy)


def _fire(days_since: int, doy: float) -> np.ndarray:
    char = max(0.1, float(np.exp(-days_since / 180.0)))
    green = 0.3 * _regrowth(days_since, doy, 30, 540.0) * (0.5 + 0.5 * (90 <= doy <= 290))
    return mixture("soil", char=0.8 * char, green_leaf=green, rock=0.1)


def _construction(days_since: int, doy: float) -> np.ndarray:
    return mixture("soil", urban=0.3) if days_since < 90 else mixture("urban", soil=0.1)


def _quarry(days_since: int, doy: float) -> np.ndarray:
    return mixture("soil", dry_vegetation=0.2, rock=0.2) if days_since < 30 else mixture("rock", soil=0.3)


def _reservoir(days_since: int, doy: float) -> np.ndarray:
    fill = _regrowth(days_since, doy, 0, 42.0)
    return mixture("soil", water=0.95 * fill, green_leaf=0.15 * (1.0 - fill))


def _glacier_retreat(days_since: int, doy: float) -> np.ndarray:
    melted = _regrowth(days_since, doy, 0, 30.0)
    return mixture("rock", snow=1.0 - melted, soil=0.12 * melted)


def _landslide(days_since: int, doy: float) -> np.ndarray:
    return mixture("soil", rock=0.35, dry_vegetation=0.05)


def _new_water(days_since: int, doy: float) -> np.ndarray:
    return mixture("soil", water=0.5) if days_since < 20 else mixture("water")


def shrub_share(days_since: int) -> float:
    """Shrub cover of an encroaching grassland: 0.5 on the recorded date, 0 → 1 over 240 days."""
    return float(np.clip(0.5 + days_since / ENCROACHMENT_DAYS, 0.0, 1.0))


def _encroachment(grass: Surface) -> Callable[[int, float], np.ndarray]:
    shrub = Surface.MAQUIS if grass is Surface.DRY_GRASS else Surface.SHRUB

    def fractions(days_since: int, doy: float) -> np.ndarray:
        share = shrub_share(days_since)
        return (1.0 - share) * surface_fractions(grass, doy) + share * surface_fractions(shrub, doy)

    return fractions


def _variants(
    name: str,
    to_class: str,
    description: str,
    fractions: Callable[[int, float], np.ndarray],
    *lands: tuple[Surface, ...],
    size: float = 1.0,
) -> tuple[Process, ...]:
    return tuple(Process(name, land, to_class, description, fractions, size) for land in lands)


REGISTRY: dict[str, tuple[Process, ...]] = {
    "windthrow": _variants(
        "windthrow", "grassland", "storm-felled forest, dead wood then grass", _windthrow, FORESTS
    ),
    "clearcut": _variants(
        "clearcut", "grassland", "forest clear-cut, slash then regrowing grass", _clearcut, FORESTS
    ),
    "fire": _variants(
        "fire", "bare", "burnt forest or shrubs: char, then slow sparse green-up", _fire, FORESTS, SHRUBS
    ),
    "construction": _variants(
        "construction",
        "artificial",
        "new buildings on fields or a meadow",
        _construction,
        (Surface.CROPLAND,),
        (Surface.MEADOW, Surface.DRY_GRASS),
        size=CONSTRUCTION_SIZE,
    ),
    "quarry": _variants(
        "quarry", "bare", "open-pit quarry: bright rock and soil", _quarry, GRASSES, FORESTS, size=QUARRY_SIZE
    ),
    "reservoir": _variants(
        "reservoir",
        "water",
        "dammed reservoir filling over six weeks",
        _reservoir,
        (Surface.CROPLAND,),
        (Surface.MEADOW, Surface.DRY_GRASS),
        size=1.5,
    ),
    "glacier_retreat": (
        Process(
            "glacier_retreat",
            (Surface.GLACIER,),
            "bare",
            "glacier ice melted out, rock exposed",
            _glacier_retreat,
            months=(7, 9),
        ),
    ),
    "shrub_encroachment": tuple(
        Process(
            "shrub_encroachment",
            (grass,),
            "shrubland",
            "shrubs invade grassland over 8 months (dated at half cover)",
            _encroachment(grass),
            lead_days=ENCROACHMENT_DAYS // 2,
        )
        for grass in GRASSES
    ),
    "landslide": _variants(
        "landslide", "bare", "landslide strips forest to soil and rock", _landslide, FORESTS
    ),
    "new_water": _variants(
        "new_water", "water", "new water body dug in fields", _new_water, (Surface.CROPLAND,)
    ),
}
CHANGE_PROCESSES = tuple(REGISTRY)


def process_cycle(names: tuple[str, ...]) -> tuple[tuple[Process, ...], ...]:
    """The variant groups of the named processes, in order (names must be in REGISTRY)."""
    return tuple(REGISTRY[name] for name in names)
