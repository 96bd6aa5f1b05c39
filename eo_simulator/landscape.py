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

import numpy as np
from osgeo import osr

from eo_simulator.spectra import CROPS, Surface

osr.UseExceptions()


@dataclass(frozen=True)
class Grid:
    """A north-up raster grid: CRS, upper-left corner, pixel size and shape."""

    epsg: int
    xmin: float
    ymax: float
    resolution: float
    width: int
    height: int

    @property
    def geotransform(self) -> tuple[float, float, float, float, float, float]:
        """The GDAL geotransform."""
        return (self.xmin, self.resolution, 0.0, self.ymax, 0.0, -self.resolution)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(xmin, ymin, xmax, ymax)`` in the grid's CRS."""
        return (
            self.xmin,
            self.ymax - self.height * self.resolution,
            self.xmin + self.width * self.resolution,
            self.ymax,
        )

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)``."""
        return (self.height, self.width)

    def coarsened(self, factor: int) -> Grid:
        """The same extent with pixels ``factor`` times larger (shape must divide)."""
        return Grid(
            self.epsg,
            self.xmin,
            self.ymax,
            self.resolution * factor,
            self.width // factor,
            self.height // factor,
        )

    def padded(self, pixels: int) -> Grid:
        """The grid grown by ``pixels`` on every side."""
        pad = pixels * self.resolution
        return Grid(
            self.epsg,
            self.xmin - pad,
            self.ymax + pad,
            self.resolution,
            self.width + 2 * pixels,
            self.height + 2 * pixels,
        )

    def cell_bounds(self, rows: np.ndarray, cols: np.ndarray) -> list[float]:
        """Bounds ``[xmin, ymin, xmax, ymax]`` of the pixels at ``rows``/``cols`` (non-empty)."""
        res = self.resolution
        return [
            self.xmin + float(cols.min()) * res,
            self.ymax - float(rows.max() + 1) * res,
            self.xmin + float(cols.max() + 1) * res,
            self.ymax - float(rows.min()) * res,
        ]


def spatial_reference(epsg: int) -> osr.SpatialReference:
    """An osr SRS in x/y (lon/lat) axis order, whatever the EPSG definition says."""
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


def transform_point(source_epsg: int, target_epsg: int, x: float, y: float) -> tuple[float, float]:
    """One point from one CRS to another (x/y, lon/lat order)."""
    transform = osr.CoordinateTransformation(spatial_reference(source_epsg), spatial_reference(target_epsg))
    tx, ty = transform.TransformPoint(x, y)[:2]
    return float(tx), float(ty)


def footprint(grid: Grid, epsg: int, points_per_side: int = 8) -> np.ndarray:
    """The grid's outline (densified) transformed to another CRS.

    Args:
        grid: The grid.
        epsg: Target CRS (4326 gives lon/lat).
        points_per_side: Points per edge, so curved edges are followed.

    Returns:
        (n, 2) array of x/y (lon/lat) points, closed ring, counter-clockwise.
    """
    xmin, ymin, xmax, ymax = grid.bounds
    steps = np.linspace(0.0, 1.0, points_per_side, endpoint=False)
    ring = [(xmin + s * (xmax - xmin), ymin) for s in steps]
    ring += [(xmax, ymin + s * (ymax - ymin)) for s in steps]
    ring += [(xmax - s * (xmax - xmin), ymax) for s in steps]
    ring += [(xmin, ymax - s * (ymax - ymin)) for s in steps]
    ring.append(ring[0])
    if epsg == grid.epsg:
        return np.array(ring)
    transform = osr.CoordinateTransformation(spatial_reference(grid.epsg), spatial_reference(epsg))
    return np.array([transform.TransformPoint(x, y)[:2] for x, y in ring])


def snapped_grid(points: np.ndarray, epsg: int, resolution: float, origin: float, margin_px: int) -> Grid:
    """The smallest grid aligned on ``origin + k·resolution`` that covers points plus a margin.

    Args:
        points: (n, 2) x/y points in ``epsg``.
        epsg: The grid's CRS.
        resolution: Pixel size.
        origin: Grid lines lie at ``origin + k·resolution`` (Landsat: 15 m off the 30 m multiples).
        margin_px: Extra pixels on every side.

    Returns:
        The grid.
    """
    x0 = math.floor((points[:, 0].min() - origin) / resolution) - margin_px
    x1 = math.ceil((points[:, 0].max() - origin) / resolution) + margin_px
    y0 = math.floor((points[:, 1].min() - origin) / resolution) - margin_px
    y1 = math.ceil((points[:, 1].max() - origin) / resolution) + margin_px
    return Grid(epsg, origin + x0 * resolution, origin + y1 * resolution, resolution, x1 - x0, y1 - y0)


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


# Altitude belts by elevation rank: (upper rank, surface). Below the first: the valley floor.
VALLEY_RANK = 0.30
ALTITUDE_BELTS: tuple[tuple[float, Surface], ...] = (
    (0.46, Surface.BROADLEAF),
    (0.68, Surface.CONIFER),
    (0.76, Surface.SHRUB),
    (0.87, Surface.ALPINE_GRASS),
    (0.955, Surface.ROCK),
    (1.01, Surface.GLACIER),
)
SNOWABLE = (Surface.SHRUB, Surface.ALPINE_GRASS, Surface.ROCK)
MEADOW_PARCEL_SHARE = 0.25


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
    rng: np.random.Generator, u: np.ndarray, v: np.ndarray, valley: np.ndarray, center: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Lays out the valley floor: river, lake, wetland, towns, roads and field parcels.

    Returns:
        The Surface per pixel (255 outside the valley and its water) and the parcel id per pixel.
    """
    shape = u.shape
    width = shape[1]
    floor = np.full(shape, Surface.CROPLAND, dtype=np.uint8)
    parcels = _parcel_ids(rng, shape)
    meadow_parcels = rng.random(int(parcels.max()) + 1) < MEADOW_PARCEL_SHARE
    floor[meadow_parcels[parcels]] = Surface.MEADOW

    side = 1.0 if rng.random() < 0.5 else -1.0
    road = (np.abs(u - (center - side * 0.06)) * width < 1.0) & valley
    town_rows = (rng.uniform(0.12, 0.38), rng.uniform(0.62, 0.88))
    town_noise = smooth_noise(rng, shape, 2.0)
    for town_row in town_rows:
        town_center = (float(np.interp(town_row, v[:, 0], center[:, 0])) + side * 0.09, town_row)
        radius = rng.uniform(0.06, 0.09)
        town = (_blob(u, v, town_center, (radius, radius)) + 0.25 * town_noise < 1.0) & valley
        floor[town] = np.where(town_noise[town] > 1.3, Surface.MEADOW, Surface.URBAN)
        road |= (np.abs(v - town_row) * shape[0] < 1.0) & valley
    floor[road] = Surface.URBAN

    river_line = center + 0.025 * np.sin(2 * math.pi * (2.5 * v + rng.random()))
    water = np.abs(u - river_line) * width < 2.0
    lake_row = rng.uniform(0.3, 0.7)
    lake_center = (float(np.interp(lake_row, v[:, 0], center[:, 0])) - side * 0.07, lake_row)
    water |= _blob(u, v, lake_center, (0.07, 0.05)) + 0.3 * smooth_noise(rng, shape, 3.0) < 1.0
    wetland = dilate(water, 4) & ~water & valley & (smooth_noise(rng, shape, 4.0) > 0.5)
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


def build_landscape(rng: np.random.Generator, grid: Grid, margin: int, years: tuple[int, ...]) -> Landscape:
    """Lays out the landscape on ``grid`` (the AOI plus ``margin`` pixels on each side).

    Args:
        rng: Random generator (the seed decides everything).
        grid: The 10 m grid to fill.
        margin: Margin in pixels around the AOI.
        years: The simulated years (crop rotations are drawn for the year before and after too).

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

    surface = np.full(shape, Surface.BROADLEAF, dtype=np.uint8)
    lower = VALLEY_RANK
    for upper, belt in ALTITUDE_BELTS:
        surface[(rank >= lower) & (rank < upper)] = belt
        lower = upper
    clearings = smooth_noise(rng, shape, max(2.0, size / 25))
    surface[(surface == Surface.BROADLEAF) & (clearings > 1.0)] = Surface.MEADOW
    surface[(surface == Surface.CONIFER) & (clearings > 1.2)] = Surface.ALPINE_GRASS

    floor, parcels = _valley_floor(rng, u, v, rank < VALLEY_RANK, center)
    surface = np.where(floor != 255, floor, surface).astype(np.uint8)

    crop_pixels = surface == Surface.CROPLAND
    used, parcel_index = np.unique(parcels[crop_pixels], return_inverse=True)
    units = surface.astype(np.int32)
    units[crop_pixels] = len(Surface) + parcel_index.astype(np.int32)
    n_years = len(years) + 2
    return Landscape(
        grid=grid,
        margin=margin,
        surface=surface,
        units=units,
        elevation_rank=rank.astype(np.float32),
        texture=(1.0 + 0.04 * smooth_noise(rng, shape, 1.0) + 0.03 * smooth_noise(rng, shape, 6.0)).astype(
            np.float32
        ),
        crop_sequence=_crop_rotation(rng, used.size, n_years),
        crop_shift=rng.uniform(-8.0, 8.0, (used.size, n_years)).astype(np.float32),
        crop_vigour=rng.uniform(0.92, 1.03, (used.size, n_years)).astype(np.float32),
        first_crop_year=years[0] - 1,
    )
