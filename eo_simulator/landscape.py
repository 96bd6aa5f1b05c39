"""The simulated landscape: grids, smooth noise, and where each surface type lies.

An Alpine valley compressed into a few kilometres, so that even a tiny test scene holds every
platform class: a seeded elevation field (a valley along a meandering line plus smooth noise)
decides the altitude belts by elevation *rank* (glacier, rock, alpine grass, shrubs, conifer,
broadleaf forest, valley floor), and rules place the river, a lake, wetlands, two towns, roads and
rectangular crop parcels on the valley floor. Ranks instead of metres keep the class proportions
the same at every scene size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import numpy as np

from eo_simulator.grid import Grid
from eo_simulator.landscapes import PROFILES, LandscapeProfile
from eo_simulator.spectra import CROPS, Surface


def smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma_px: float) -> np.ndarray:
    """Gaussian-filtered white noise (FFT), zero mean and unit standard deviation.

    Args:
        rng: Random generator.
        shape: ``(height, width)``.
        sigma_px: Standard deviation of the Gaussian filter in pixels (the blob size).

    Returns:
        float32 array of ``shape``.
    """
    pad = min(math.ceil(3 * sigma_px), max(shape))  # limits wrap-around without huge FFTs
    height, width = shape[0] + 2 * pad, shape[1] + 2 * pad
    white = rng.standard_normal((height, width))
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    transfer = np.exp(-2.0 * (math.pi * sigma_px) ** 2 * (fx**2 + fy**2))
    smooth = np.fft.irfft2(np.fft.rfft2(white) * transfer, s=(height, width))
    smooth = smooth[pad : pad + shape[0], pad : pad + shape[1]]
    return ((smooth - smooth.mean()) / (smooth.std() + 1e-12)).astype(np.float32)


def box_sum(values: np.ndarray, radius: int) -> np.ndarray:
    """Sum over the (2·radius+1)² window around each pixel (zeros outside), by cumulative sums."""
    size = 2 * radius + 1
    padded = np.pad(values.astype(np.int64), radius)
    cumulative = np.pad(padded.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    return np.asarray(
        cumulative[size:, size:]
        - cumulative[:-size, size:]
        - cumulative[size:, :-size]
        + cumulative[:-size, :-size]
    )


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation of ``mask`` by a square of half-size ``radius``."""
    return box_sum(mask, radius) > 0


def rank_transform(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Each value's rank among ``reference`` values as a fraction 0..1 (uniform over ``reference``)."""
    ordered = np.sort(reference, axis=None)
    return (np.searchsorted(ordered, values) / ordered.size).astype(np.float32)


# The alpine valley's tables live in landscapes.PROFILES["alpine"] with the other landscapes'.
SNOWABLE = PROFILES["alpine"].snowable
DECIDUOUS_SHRUB_SHARE = 0.45  # share of the shrubland that is deciduous with the look-alike on
RAMP_DAYS = 12.0  # days over which a weather anomaly sets in and fades


@dataclass(frozen=True)
class Anomaly:
    """A weather anomaly over the whole scene: ``snow_year`` or ``drought_year``.

    Attributes:
        name: The look-alike's name.
        start: First day of the anomaly (it ramps up over RAMP_DAYS).
        end: Day it is over (it ramps down over the RAMP_DAYS before).
    """

    name: str
    start: date
    end: date

    def strength(self, day: date) -> float:
        """0 outside the anomaly, rising to 1 inside it."""
        if not self.start <= day < self.end:
            return 0.0
        return float(min(1.0, (day - self.start).days / RAMP_DAYS, (self.end - day).days / RAMP_DAYS))


@dataclass(frozen=True, eq=False)
class Landscape:
    """The ground at the start of the series, on the 10 m grid the scenes cover.

    Attributes:
        grid: The 10 m grid (the AOI plus a margin) every acquisition is rendered on.
        margin: Width in pixels of the margin around the AOI.
        surface: uint8 Surface per pixel.
        units: int32 rendering unit per pixel: a Surface value, or ``len(Surface) + parcel``
            for a crop parcel (each parcel has its own crop calendar).
        elevation_rank: float32 0 (valley floor) … 1 (summit), the share of AOI pixels below.
        texture: float32 brightness multiplier around 1 (within-class variability).
        crop_sequence: (parcel, year) index into CROPS; column 0 is ``first_crop_year``.
        crop_shift: (parcel, year) days by which that season runs early (<0) or late.
        crop_vigour: (parcel, year) multiplier of the crop's peak green cover.
        first_crop_year: The year of column 0 (the year before the series).
        kind: The landscape (a key of ``landscapes.PROFILES``).
        anomalies: Look-alike weather years (snow year, drought year) that render_ground applies.
    """

    grid: Grid
    margin: int
    surface: np.ndarray
    units: np.ndarray
    elevation_rank: np.ndarray
    texture: np.ndarray
    crop_sequence: np.ndarray
    crop_shift: np.ndarray
    crop_vigour: np.ndarray
    first_crop_year: int
    kind: str = "alpine"
    anomalies: tuple[Anomaly, ...] = ()

    @property
    def profile(self) -> LandscapeProfile:
        """The landscape's tables."""
        return PROFILES[self.kind]

    @property
    def aoi(self) -> tuple[slice, slice]:
        """Row and column slices of the AOI inside ``grid``."""
        rows = slice(self.margin, self.grid.height - self.margin)
        cols = slice(self.margin, self.grid.width - self.margin)
        return rows, cols

    @property
    def n_parcels(self) -> int:
        """Number of crop parcels."""
        return int(self.crop_sequence.shape[0])

    def aoi_mask(self, border: int = 0) -> np.ndarray:
        """True inside the AOI, ``border`` pixels away from its edge."""
        mask = np.zeros(self.grid.shape, dtype=bool)
        rows, cols = self.aoi
        mask[rows.start + border : rows.stop - border, cols.start + border : cols.stop - border] = True
        return mask


def _normalized_coordinates(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    return (cols + 0.5) / shape[1], (rows + 0.5) / shape[0]


def _blob(
    u: np.ndarray, v: np.ndarray, center: tuple[float, float], radii: tuple[float, float]
) -> np.ndarray:
    """Squared normalized distance to an ellipse centre (< 1 inside)."""
    return np.asarray(((u - center[0]) / radii[0]) ** 2 + ((v - center[1]) / radii[1]) ** 2)


def _parcel_ids(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Rectangular field parcels: columns of random width split into rows of random height."""
    ids = np.empty(shape, dtype=np.int32)
    next_id = col = 0
    while col < shape[1]:
        width = int(rng.integers(8, 21))
        row = 0
        while row < shape[0]:
            height = int(rng.integers(6, 17))
            ids[row : row + height, col : col + width] = next_id
            next_id += 1
            row += height
        col += width
    return ids


def _valley_floor(
    rng: np.random.Generator,
    u: np.ndarray,
    v: np.ndarray,
    valley: np.ndarray,
    center: np.ndarray,
    profile: LandscapeProfile,
) -> tuple[np.ndarray, np.ndarray]:
    """Lays out the valley floor: river, lake, wetland, towns, roads and field parcels.

    Returns:
        The Surface per pixel (255 outside the valley and its water) and the parcel id per pixel.
    """
    shape = u.shape
    width = shape[1]
    floor = np.full(shape, Surface.CROPLAND, dtype=np.uint8)
    parcels = _parcel_ids(rng, shape)
    meadow_parcels = rng.random(int(parcels.max()) + 1) < profile.meadow_share
    floor[meadow_parcels[parcels]] = Surface.MEADOW

    side = 1.0 if rng.random() < 0.5 else -1.0
    road = (np.abs(u - (center - side * (0.06 + profile.town_shift))) * width < 1.0) & valley
    town_rows = (rng.uniform(0.12, 0.38), rng.uniform(0.62, 0.88))
    town_noise = smooth_noise(rng, shape, 2.0)
    for town_row in town_rows:
        town_x = float(np.interp(town_row, v[:, 0], center[:, 0])) + side * (0.09 + profile.town_shift)
        town_center = (town_x, town_row)
        radius = rng.uniform(*profile.town_radius)
        town = (_blob(u, v, town_center, (radius, radius)) + 0.25 * town_noise < 1.0) & valley
        floor[town] = np.where(town_noise[town] > 1.3, Surface.MEADOW, Surface.URBAN)
        road |= (np.abs(v - town_row) * shape[0] < 1.0) & valley
    floor[road] = Surface.URBAN

    river_line = center + 0.025 * np.sin(2 * math.pi * (2.5 * v + rng.random()))
    water = np.abs(u - river_line) * width < profile.river_halfwidth
    lake_row = rng.uniform(0.3, 0.7)
    lake_center = (float(np.interp(lake_row, v[:, 0], center[:, 0])) - side * 0.07, lake_row)
    water |= _blob(u, v, lake_center, profile.lake_radii) + 0.3 * smooth_noise(rng, shape, 3.0) < 1.0
    near_water = dilate(water, profile.wetland_reach) & ~water & valley
    wetland = near_water & (smooth_noise(rng, shape, 4.0) > profile.wetland_threshold)
    floor[wetland] = Surface.WETLAND
    floor[water] = Surface.WATER
    return np.asarray(np.where(valley | water, floor, 255)).astype(np.uint8), parcels


def _crop_rotation(rng: np.random.Generator, n_parcels: int, n_years: int) -> np.ndarray:
    """Crop index per parcel and year; the crop changes from one year to the next 3 times in 4."""
    sequence = np.empty((n_parcels, n_years), dtype=np.int8)
    sequence[:, 0] = rng.integers(0, len(CROPS), n_parcels)
    for year in range(1, n_years):
        rotate = rng.random(n_parcels) < 0.75
        step = rng.integers(1, len(CROPS), n_parcels)
        sequence[:, year] = np.where(
            rotate, (sequence[:, year - 1] + step) % len(CROPS), sequence[:, year - 1]
        )
    return sequence


def build_landscape(
    rng: np.random.Generator,
    grid: Grid,
    margin: int,
    years: tuple[int, ...],
    kind: str = "alpine",
    deciduous_shrubs: bool = False,
) -> Landscape:
    """Lays out the landscape on ``grid`` (the AOI plus ``margin`` pixels on each side).

    Args:
        rng: Random generator (the seed decides everything).
        grid: The 10 m grid to fill.
        margin: Margin in pixels around the AOI.
        years: The simulated years (crop rotations are drawn for the year before and after too).
        kind: The landscape (a key of ``landscapes.PROFILES``).
        deciduous_shrubs: Turn DECIDUOUS_SHRUB_SHARE of the shrubland (in patches) deciduous
            (the look-alike of that name); drawn after everything else, so the rest is unchanged.

    Returns:
        The landscape.
    """
    shape = grid.shape
    u, v = _normalized_coordinates(shape)
    size = min(shape)
    center = rng.uniform(0.42, 0.58) + 0.10 * np.sin(2 * math.pi * (0.8 * v + rng.random()))
    distance = np.abs(u - center)
    elevation = (
        250.0
        + 2800.0 * (distance / 0.5) ** 1.2
        + 450.0 * smooth_noise(rng, shape, size / 6)
        + 150.0 * smooth_noise(rng, shape, size / 20)
    )
    aoi = (slice(margin, shape[0] - margin), slice(margin, shape[1] - margin))
    rank = np.clip(rank_transform(elevation, elevation[aoi]) + 0.02 * smooth_noise(rng, shape, 2.0), 0.0, 1.0)

    profile = PROFILES[kind]
    surface = np.full(shape, Surface.BROADLEAF, dtype=np.uint8)
    lower = 0.0
    for upper, belt in profile.belts:
        surface[(rank >= lower) & (rank < upper)] = belt
        lower = upper
    clearings = smooth_noise(rng, shape, max(2.0, size / 25))
    for belt, threshold, opened in profile.clearings:
        surface[(surface == belt) & (clearings > threshold)] = opened

    valley = (rank >= profile.floor[0]) & (rank < profile.floor[1])
    floor, parcels = _valley_floor(rng, u, v, valley, center, profile)
    surface = np.where(floor != 255, floor, surface).astype(np.uint8)
    if profile.woods is not None:
        fields = np.isin(surface, (Surface.CROPLAND, Surface.MEADOW)) & valley
        surface[fields & (smooth_noise(rng, shape, 2.5) > profile.woods)] = Surface.BROADLEAF

    crop_pixels = surface == Surface.CROPLAND
    used, parcel_index = np.unique(parcels[crop_pixels], return_inverse=True)
    units = surface.astype(np.int32)
    units[crop_pixels] = len(Surface) + parcel_index.astype(np.int32)
    n_years = len(years) + 2
    texture = 1.0 + 0.04 * smooth_noise(rng, shape, 1.0) + 0.03 * smooth_noise(rng, shape, 6.0)
    crop_sequence = _crop_rotation(rng, used.size, n_years)
    crop_shift = rng.uniform(-8.0, 8.0, (used.size, n_years)).astype(np.float32)
    crop_vigour = rng.uniform(0.92, 1.03, (used.size, n_years)).astype(np.float32)
    if deciduous_shrubs:
        shrubs = np.isin(surface, (Surface.SHRUB, Surface.MAQUIS))
        patches = smooth_noise(rng, shape, max(2.0, size / 30))
        threshold = np.quantile(patches[shrubs], 1.0 - DECIDUOUS_SHRUB_SHARE) if shrubs.any() else 0.0
        surface[shrubs & (patches >= threshold)] = Surface.DECIDUOUS_SHRUB
        units = np.where(surface == Surface.DECIDUOUS_SHRUB, int(Surface.DECIDUOUS_SHRUB), units).astype(
            np.int32
        )
    return Landscape(
        grid=grid,
        margin=margin,
        surface=surface,
        units=units,
        elevation_rank=rank.astype(np.float32),
        texture=texture.astype(np.float32),
        crop_sequence=crop_sequence,
        crop_shift=crop_shift,
        crop_vigour=crop_vigour,
        first_crop_year=years[0] - 1,
        kind=kind,
    )
