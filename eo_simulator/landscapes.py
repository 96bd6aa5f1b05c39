"""The landscapes a scenario can simulate: one table of belts, floor layout and snow per landscape.

Every landscape is laid out by the same rules (landscape.py): a seeded elevation field ranks the
pixels from the lowest line (rank 0) to the highest (rank 1); *belts* give each rank interval a
surface, *clearings* open some of them, and a *floor* band of ranks gets the river, a lake, the
wetlands around the water, towns, roads and rectangular field parcels. The alpine valley is the
original one (the default scenario: its numbers must not change); the others reuse the machinery
with their own tables, so a new landscape is a new row, not new code:

- ``lowland``: lowland agriculture, three quarters farmland (crops and meadow parcels), towns, a
  river, meadows and small broadleaf woods on the low ridges; no regular winter snow.
- ``forest``: forest-dominated hills, broadleaf below and conifer above with clearings and shrub
  patches, a narrow valley of small villages and fields; a little snow on the summits in winter.
- ``mediterranean``: dry grassland (green in winter and spring, brown in summer), olive-like open
  woodland, evergreen maquis, bare rock on the ridges, irrigated crops and a reservoir; no snow.
- ``wetland``: a coastal lagoon (sea along the low line) fringed by dunes, extensive marsh whose
  water level falls in summer, then farmland with towns, meadows and a few woods; no snow.
"""

from __future__ import annotations

from dataclasses import dataclass

from eo_simulator.spectra import ALPINE_SNOWLINE, Snowline, Surface


@dataclass(frozen=True)
class LandscapeProfile:
    """The tables that make one landscape.

    Attributes:
        name: The ``ScenarioConfig.landscape`` value.
        belts: ``(upper rank, surface)`` from rank 0 upwards; the floor band's surface is replaced.
        clearings: ``(surface, threshold, new surface)``: where the clearing noise exceeds the
            threshold, that belt surface becomes the new one.
        floor: ``(lowest, highest)`` rank of the farmland floor (crops, meadows, towns, roads).
        meadow_share: Share of the floor's parcels that are meadows instead of crops.
        town_radius: Range of the towns' radii (fraction of the scene).
        town_shift: Added to the towns' and road's distance from the low line (keeps them on the floor).
        lake_radii: Radii of the lake (a reservoir in the dry landscape), fraction of the scene.
        river_halfwidth: Half width of the river in pixels.
        wetland_reach: How far (pixels) wetlands reach from the water on the floor.
        wetland_threshold: Noise level above which a pixel near water is wetland (higher: fewer).
        woods: Noise level above which floor parcels are small woods (None: no woods on the floor).
        snowline: Seasonal snowline (days of year, ranks), or None for no regular winter snow.
        snowable: Surfaces the seasonal snow covers.
    """

    name: str
    belts: tuple[tuple[float, Surface], ...]
    clearings: tuple[tuple[Surface, float, Surface], ...]
    floor: tuple[float, float]
    meadow_share: float = 0.25
    town_radius: tuple[float, float] = (0.06, 0.09)
    town_shift: float = 0.0
    lake_radii: tuple[float, float] = (0.07, 0.05)
    river_halfwidth: float = 2.0
    wetland_reach: int = 4
    wetland_threshold: float = 0.5
    woods: float | None = None
    snowline: Snowline | None = ALPINE_SNOWLINE
    snowable: tuple[Surface, ...] = (Surface.SHRUB, Surface.ALPINE_GRASS, Surface.ROCK)


S = Surface
PROFILES: dict[str, LandscapeProfile] = {
    profile.name: profile
    for profile in (
        LandscapeProfile(
            "alpine",
            belts=(
                (0.30, S.BROADLEAF),
                (0.46, S.BROADLEAF),
                (0.68, S.CONIFER),
                (0.76, S.SHRUB),
                (0.87, S.ALPINE_GRASS),
                (0.955, S.ROCK),
                (1.01, S.GLACIER),
            ),
            clearings=((S.BROADLEAF, 1.0, S.MEADOW), (S.CONIFER, 1.2, S.ALPINE_GRASS)),
            floor=(0.0, 0.30),
        ),
        LandscapeProfile(
            "lowland",
            belts=((0.72, S.MEADOW), (0.86, S.MEADOW), (0.95, S.BROADLEAF), (1.01, S.SHRUB)),
            clearings=((S.BROADLEAF, 0.8, S.MEADOW),),
            floor=(0.0, 0.72),
            meadow_share=0.3,
            town_radius=(0.07, 0.10),
            town_shift=0.05,
            lake_radii=(0.04, 0.03),
            woods=1.9,
            snowline=None,
            snowable=(),
        ),
        LandscapeProfile(
            "forest",
            belts=((0.14, S.BROADLEAF), (0.55, S.BROADLEAF), (0.93, S.CONIFER), (1.01, S.SHRUB)),
            clearings=((S.BROADLEAF, 1.15, S.MEADOW), (S.CONIFER, 1.35, S.SHRUB)),
            floor=(0.0, 0.14),
            meadow_share=0.4,
            town_radius=(0.03, 0.045),
            town_shift=-0.045,
            lake_radii=(0.03, 0.02),
            river_halfwidth=1.5,
            snowline=((0.0, 45.0, 75.0, 345.0, 367.0), (0.93, 0.93, 1.01, 1.01, 0.93)),
            snowable=(S.SHRUB, S.MEADOW),
        ),
        LandscapeProfile(
            "mediterranean",
            belts=(
                (0.22, S.DRY_GRASS),
                (0.45, S.DRY_GRASS),
                (0.60, S.OPEN_WOODLAND),
                (0.86, S.MAQUIS),
                (1.01, S.ROCK),
            ),
            clearings=((S.MAQUIS, 1.1, S.ROCK), (S.OPEN_WOODLAND, 1.2, S.DRY_GRASS)),
            floor=(0.0, 0.22),
            meadow_share=0.15,
            town_radius=(0.04, 0.06),
            town_shift=-0.02,
            lake_radii=(0.10, 0.07),
            river_halfwidth=1.0,
            wetland_threshold=1.6,
            snowline=None,
            snowable=(),
        ),
        LandscapeProfile(
            "wetland",
            belts=(
                (0.18, S.WATER),
                (0.23, S.SAND),
                (0.42, S.MARSH),
                (0.72, S.MEADOW),
                (0.88, S.MEADOW),
                (1.01, S.BROADLEAF),
            ),
            clearings=((S.BROADLEAF, 0.9, S.MEADOW),),
            floor=(0.42, 0.72),
            meadow_share=0.35,
            town_radius=(0.05, 0.07),
            town_shift=0.20,
            wetland_reach=8,
            wetland_threshold=0.0,
            snowline=None,
            snowable=(),
        ),
    )
}
LANDSCAPES = tuple(PROFILES)
