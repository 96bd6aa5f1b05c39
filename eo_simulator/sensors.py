"""How the two sensors see the ground on one day: rendering, clouds, and the product encodings.

This is where the simulated archive earns its keep for the preprocessing stage: clouds are bright
and flat and hide the ground, their shadows (displaced by a fixed sun geometry) darken it, thin
cirrus brightens it, and each product flags them in its own way (Sentinel-2 SCL classes at 20 m,
Landsat QA_PIXEL bit flags at 30 m). Sentinel-2 DNs carry the +1000 BOA offset from processing
baseline 04.00 on, and Landsat-8 sees the same ground through the OLI band-passes, on its own 30 m
grid in another UTM zone, averaged from the 10 m ground with GDAL. Where the clouds really are is
returned as a truth raster, so cloud masking can be scored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from enum import IntEnum

import numpy as np
from osgeo import gdal

from eo_simulator.config import ScenarioConfig
from eo_simulator.events import PlantedEvent
from eo_simulator.grid import Grid, spatial_reference
from eo_simulator.landscape import Landscape, dilate, smooth_noise
from eo_simulator.lookalikes import brown_table, snow_year_cover
from eo_simulator.spectra import (
    CIRRUS_SPECTRUM,
    CLOUD_SPECTRUM,
    CROPS,
    ENDMEMBER_INDEX,
    ENDMEMBER_MATRIX,
    L8_BANDS,
    N_BASE_ENDMEMBERS,
    S2_BAND_INDEX,
    S2_BANDS,
    Surface,
    crop_fractions,
    ndvi,
    snow_cover,
    surface_fractions,
)
from eo_tasks.preprocess.harmonize import msi_to_oli

gdal.UseExceptions()


class SCL(IntEnum):
    """Sentinel-2 L2A Scene Classification Layer codes."""

    NO_DATA = 0
    SATURATED_OR_DEFECTIVE = 1
    DARK_AREA = 2
    CLOUD_SHADOW = 3
    VEGETATION = 4
    NOT_VEGETATED = 5
    WATER = 6
    UNCLASSIFIED = 7
    CLOUD_MEDIUM_PROBABILITY = 8
    CLOUD_HIGH_PROBABILITY = 9
    THIN_CIRRUS = 10
    SNOW = 11


class QA(IntEnum):
    """Bit positions of Landsat Collection 2 QA_PIXEL (bits 8–15 hold 2-bit confidences)."""

    FILL = 0
    DILATED_CLOUD = 1
    CIRRUS = 2
    CLOUD = 3
    CLOUD_SHADOW = 4
    SNOW = 5
    CLEAR = 6
    WATER = 7
    CLOUD_CONFIDENCE = 8
    SHADOW_CONFIDENCE = 10
    SNOW_CONFIDENCE = 12
    CIRRUS_CONFIDENCE = 14


class CloudTruth(IntEnum):
    """Codes of the per-acquisition cloud truth rasters (255: outside the acquired swath)."""

    CLEAR = 0
    THIN_CLOUD = 1
    THICK_CLOUD = 2
    CIRRUS = 3
    SHADOW = 4
    NO_DATA = 255


S2_SCALE = 10000.0
S2_BOA_OFFSET_DN = 1000
L8_SCALE = 0.0000275
L8_OFFSET = -0.2
SHADOW_OFFSET_M = (-180.0, 300.0)  # east, north displacement of a shadow from its cloud
SUN_AZIMUTH_DEG = round(math.degrees(math.atan2(-SHADOW_OFFSET_M[0], -SHADOW_OFFSET_M[1])) % 360, 1)
THICK_CLOUD = 0.6  # optical thickness from which a cloud is opaque (SCL 9, QA high confidence)
SHADOW_CASTING = 0.2  # thickness from which a cloud casts a visible shadow
SHADOW_DARKENING = 0.4  # a shadowed surface keeps this share of its reflectance (diffuse light)
SWATH_EDGE_PROBABILITY = 0.15
DILATED_CLOUD_PX = 3
SCL_PRIORITY = (0, 1, 9, 8, 10, 3, 11, 6, 4, 5, 7, 2)  # which code a 20 m cell gets from its 10 m pixels


@dataclass(frozen=True, eq=False)
class GroundView:
    """The ground on one day, as Sentinel-2 MSI would see it without atmosphere.

    Attributes:
        reflectance: (band, y, x) float32 surface reflectance in S2_BANDS order.
        water: Pixels dominated by water.
        snow: Pixels dominated by snow or ice.
    """

    reflectance: np.ndarray
    water: np.ndarray
    snow: np.ndarray


CROP_SEASONS = np.array([(c.sow, c.green_up, c.senescence, c.harvest) for c in CROPS], dtype=np.float32)
CROP_PEAKS = np.array([c.peak_cover for c in CROPS], dtype=np.float32)


def _crop_table(landscape: Landscape, day: date) -> np.ndarray:
    """End-member fractions of every crop parcel on ``day``."""
    column = day.year - landscape.first_crop_year
    crop = landscape.crop_sequence[:, column]
    following = landscape.crop_sequence[:, column + 1]
    following_sow = CROP_SEASONS[following, 0] + landscape.crop_shift[:, column + 1]
    return crop_fractions(
        float(day.timetuple().tm_yday),
        CROP_SEASONS[crop] + landscape.crop_shift[:, column, None],
        CROP_PEAKS[crop] * landscape.crop_vigour[:, column],
        np.where(following_sow < 0, following_sow + 365.0, np.inf),
    )


def render_ground(landscape: Landscape, events: list[PlantedEvent], day: date) -> GroundView:
    """Renders the ground of the whole scene grid on ``day`` (phenology, events, seasonal snow).

    Args:
        landscape: The landscape.
        events: Planted events; those active on ``day`` replace their pixels' ground.
        day: The acquisition day.

    Returns:
        The ground view.
    """
    doy = float(day.timetuple().tm_yday)
    event_rows = [event.process.fractions((day - event.start).days, doy) for event in events]
    table = np.vstack(
        [np.stack([surface_fractions(s, doy) for s in Surface]), _crop_table(landscape, day), *event_rows]
    )
    table = brown_table(table, landscape, day)
    units = landscape.units.copy()
    first_event_unit = len(Surface) + landscape.n_parcels
    for i, event in enumerate(events):
        if event.active(day):
            units.flat[event.pixels] = first_event_unit + i
    # The default scenes mix the first end-members only (bit-identical); appended ones are added.
    fractions = table[:, :N_BASE_ENDMEMBERS][units]
    mixed = fractions @ ENDMEMBER_MATRIX[:N_BASE_ENDMEMBERS]
    appended = table[:, N_BASE_ENDMEMBERS:]
    if appended.any():
        mixed = mixed + appended[units] @ ENDMEMBER_MATRIX[N_BASE_ENDMEMBERS:]
    reflectance = np.moveaxis(mixed, -1, 0) * landscape.texture
    profile = landscape.profile
    seasonal_snow = np.zeros(landscape.grid.shape, dtype=np.float32)
    if profile.snowline is not None:
        seasonal_snow = snow_cover(landscape.elevation_rank, doy, profile.snowline)
        seasonal_snow = seasonal_snow * np.isin(landscape.surface, profile.snowable)
    snow_year = snow_year_cover(landscape, day)
    if snow_year is not None:
        seasonal_snow = np.maximum(seasonal_snow, snow_year)
    snow_spectrum = ENDMEMBER_MATRIX[ENDMEMBER_INDEX["snow"], :, None, None]
    reflectance = reflectance * (1.0 - seasonal_snow) + seasonal_snow * snow_spectrum
    return GroundView(
        reflectance=np.ascontiguousarray(reflectance, dtype=np.float32),
        water=fractions[..., ENDMEMBER_INDEX["water"]] >= 0.5,
        snow=(seasonal_snow >= 0.5) | (fractions[..., ENDMEMBER_INDEX["snow"]] >= 0.5),
    )


@dataclass(frozen=True, eq=False)
class Sky:
    """Clouds over a scene grid.

    Attributes:
        thickness: 0 (clear) … 1 (opaque) per pixel; every pixel above 0 is cloud.
        cirrus: Strength 0 … 1 of thin cirrus per pixel.
        shadow: Pixels in the shadow of a cloud (which may lie outside the scene).
    """

    thickness: np.ndarray
    cirrus: np.ndarray
    shadow: np.ndarray

    def truth(self) -> np.ndarray:
        """CloudTruth code per pixel (thick cloud > thin cloud > cirrus > shadow)."""
        codes = np.zeros(self.thickness.shape, dtype=np.uint8)
        codes[self.shadow] = CloudTruth.SHADOW
        codes[self.cirrus > 0] = CloudTruth.CIRRUS
        codes[self.thickness > 0] = CloudTruth.THIN_CLOUD
        codes[self.thickness >= THICK_CLOUD] = CloudTruth.THICK_CLOUD
        return codes

    def see_through(self, reflectance: np.ndarray, cloud: np.ndarray, cirrus: np.ndarray) -> np.ndarray:
        """What the sensor sees of ``reflectance`` (band, y, x) through this sky.

        Args:
            reflectance: Surface reflectance.
            cloud: Spectrum of an opaque cloud in the same bands.
            cirrus: Reflectance that full-strength cirrus adds, same bands.

        Returns:
            Apparent reflectance.
        """
        seen = np.where(self.shadow, reflectance * SHADOW_DARKENING, reflectance)
        opacity = np.minimum(1.0, self.thickness * 1.25)
        seen = seen * (1.0 - opacity) + opacity * cloud[:, None, None]
        return np.asarray(seen + self.cirrus * cirrus[:, None, None], dtype=np.float32)


def draw_cloud_cover(rng: np.random.Generator, settings: ScenarioConfig) -> tuple[float, float]:
    """The cloud and cirrus cover fractions of one acquisition (clear, partly cloudy or overcast)."""
    draw, partial, cirrus_draw, cirrus = rng.random(), rng.random(), rng.random(), rng.uniform(0.05, 0.3)
    if draw < settings.cloud_free_probability:
        return 0.0, 0.0
    if draw < settings.cloud_free_probability + settings.overcast_probability:
        cover = 0.7 + 0.3 * partial
    else:
        cover = 0.03 + (settings.max_partial_cloud_cover - 0.03) * partial
    return cover, cirrus if cirrus_draw < settings.cirrus_probability else 0.0


def _layer(field: np.ndarray, inner: tuple[slice, slice], cover: float, softness: float) -> np.ndarray:
    """Thresholds a noise field so that ``cover`` of the inner window is above 0."""
    if cover <= 0.0:
        return np.zeros(field.shape, dtype=np.float32)
    level = np.quantile(field[inner], 1.0 - cover) if cover < 1.0 else field.min() - 1e-3
    return np.clip((field - level) / softness, 0.0, 1.0).astype(np.float32)


def draw_sky(
    rng: np.random.Generator, shape: tuple[int, int], resolution: float, cover: float, cirrus_cover: float
) -> Sky:
    """Cloud blobs from thresholded smooth noise, cirrus sheets, and the shadows they cast.

    Args:
        rng: Random generator.
        shape: The scene grid's ``(height, width)``.
        resolution: Its pixel size in metres (the shadow offset is fixed in metres).
        cover: Fraction of the scene under cloud.
        cirrus_cover: Fraction of the scene under cirrus.

    Returns:
        The sky.
    """
    shift_rows = round(-SHADOW_OFFSET_M[1] / resolution)
    shift_cols = round(SHADOW_OFFSET_M[0] / resolution)
    pad = max(abs(shift_rows), abs(shift_cols)) + 1
    padded = (shape[0] + 2 * pad, shape[1] + 2 * pad)
    inner = (slice(pad, pad + shape[0]), slice(pad, pad + shape[1]))
    blob = max(2.0, min(shape) / 10)
    field = smooth_noise(rng, padded, blob) + 0.35 * smooth_noise(rng, padded, blob / 4)
    thickness = _layer(field, inner, cover, 0.8)
    cirrus = 0.8 * _layer(smooth_noise(rng, padded, 2 * blob), inner, cirrus_cover, 1.5)
    casting = thickness[
        pad - shift_rows : pad - shift_rows + shape[0], pad - shift_cols : pad - shift_cols + shape[1]
    ]
    return Sky(
        thickness=np.ascontiguousarray(thickness[inner]),
        cirrus=np.ascontiguousarray(cirrus[inner]),
        shadow=casting >= SHADOW_CASTING,
    )


def block_mean(values: np.ndarray, factor: int) -> np.ndarray:
    """Mean over ``factor``×``factor`` blocks (the last two axes must divide)."""
    *lead, height, width = values.shape
    blocks = values.reshape(*lead, height // factor, factor, width // factor, factor)
    return np.asarray(blocks.mean(axis=(-3, -1)), dtype=np.float32)


def upsample(values: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement by ``factor``."""
    return np.repeat(np.repeat(values, factor, axis=0), factor, axis=1)


@dataclass(frozen=True, eq=False)
class S2Scene:
    """One simulated Sentinel-2 L2A acquisition.

    Attributes:
        dn: Asset key → uint16 DN at the band's native resolution (0 no data, 65535 saturated).
        scl: uint8 Scene Classification Layer at 20 m.
        cloud_truth: uint8 CloudTruth codes at 10 m.
        cloud_cover: Percentage of valid 20 m pixels flagged cloud or cirrus (SCL 8, 9, 10).
        nodata_percentage: Percentage of the scene outside the acquired swath.
    """

    dn: dict[str, np.ndarray]
    scl: np.ndarray
    cloud_truth: np.ndarray
    cloud_cover: float
    nodata_percentage: float


def _swath_and_defects(rng: np.random.Generator, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """No-data beyond a swath edge (in some acquisitions) and a few saturated pixels."""
    nodata = np.zeros(shape, dtype=bool)
    if rng.random() < SWATH_EDGE_PROBABILITY:
        rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
        across = (cols + rows * math.tan(math.radians(rng.uniform(-12, 12)))) / shape[1]
        keep = rng.uniform(0.6, 0.9)
        nodata = across > keep if rng.random() < 0.5 else across < 1.0 - keep
    saturated = np.zeros(shape, dtype=bool)
    saturated.flat[rng.integers(0, saturated.size, rng.poisson(3))] = True
    return nodata, saturated & ~nodata


def _surface_scl(ground: GroundView) -> np.ndarray:
    codes = np.where(ndvi(ground.reflectance) >= 0.4, SCL.VEGETATION, SCL.NOT_VEGETATED)
    codes = np.where(ground.water, SCL.WATER, codes)
    return np.where(ground.snow, SCL.SNOW, codes).astype(np.uint8)


def scene_classification(
    ground: GroundView, sky: Sky, nodata: np.ndarray, saturated: np.ndarray
) -> np.ndarray:
    """SCL at 20 m: clear pixels by their true surface, then shadows, cirrus, clouds, defects.

    Args:
        ground: The ground (10 m).
        sky: The clouds (10 m).
        nodata: Pixels outside the swath (10 m).
        saturated: Saturated pixels (10 m).

    Returns:
        uint8 SCL at 20 m; a 20 m cell takes the first code of SCL_PRIORITY among its 10 m pixels.
    """
    codes = _surface_scl(ground)
    codes[sky.shadow] = SCL.CLOUD_SHADOW
    codes[sky.cirrus > 0] = SCL.THIN_CIRRUS
    codes[sky.thickness > 0] = SCL.CLOUD_MEDIUM_PROBABILITY
    codes[sky.thickness >= THICK_CLOUD] = SCL.CLOUD_HIGH_PROBABILITY
    codes[saturated] = SCL.SATURATED_OR_DEFECTIVE
    codes[nodata] = SCL.NO_DATA
    rank_of_code = np.argsort(np.array(SCL_PRIORITY))
    ranks = rank_of_code[codes]
    height, width = ranks.shape
    cell_rank = ranks.reshape(height // 2, 2, width // 2, 2).min(axis=(1, 3))
    return np.array(SCL_PRIORITY, dtype=np.uint8)[cell_rank]


def simulate_s2(
    rng: np.random.Generator,
    landscape: Landscape,
    events: list[PlantedEvent],
    day: date,
    boa_offset: bool,
    settings: ScenarioConfig,
) -> S2Scene:
    """Simulates one Sentinel-2 L2A acquisition over the landscape's grid.

    Args:
        rng: Random generator of this acquisition.
        landscape: The landscape.
        events: Planted events.
        day: Acquisition day.
        boa_offset: Whether DNs carry the +1000 offset (processing baseline ≥ 04.00).
        settings: Weather and noise.

    Returns:
        The scene.
    """
    ground = render_ground(landscape, events, day)
    sky = draw_sky(rng, landscape.grid.shape, landscape.grid.resolution, *draw_cloud_cover(rng, settings))
    gain = 1.0 + 0.01 * rng.standard_normal()
    seen = sky.see_through(ground.reflectance * gain, CLOUD_SPECTRUM, CIRRUS_SPECTRUM)
    nodata20, saturated20 = _swath_and_defects(rng, (landscape.grid.height // 2, landscape.grid.width // 2))
    nodata10, saturated10 = upsample(nodata20, 2), upsample(saturated20, 2)
    offset = S2_BOA_OFFSET_DN if boa_offset else 0
    dn = {}
    for i, band in enumerate(S2_BANDS):
        native = seen[i] if band.gsd == 10 else block_mean(seen[i], 2)
        native = native + rng.normal(0.0, settings.noise_sigma, native.shape)
        values = np.clip(np.round(native * S2_SCALE) + offset, 1, 65534).astype(np.uint16)
        values[saturated10 if band.gsd == 10 else saturated20] = 65535
        values[nodata10 if band.gsd == 10 else nodata20] = 0
        dn[band.asset] = values
    scl = scene_classification(ground, sky, nodata10, saturated10)
    truth = sky.truth()
    truth[nodata10] = CloudTruth.NO_DATA
    valid = scl != SCL.NO_DATA
    cloudy = np.isin(scl, (SCL.CLOUD_MEDIUM_PROBABILITY, SCL.CLOUD_HIGH_PROBABILITY, SCL.THIN_CIRRUS))
    return S2Scene(
        dn=dn,
        scl=scl,
        cloud_truth=truth,
        cloud_cover=round(100.0 * cloudy.sum() / max(1, valid.sum()), 2),
        nodata_percentage=round(100.0 * (~valid).mean(), 2),
    )


def warp_average(stack: np.ndarray, source: Grid, target: Grid) -> np.ndarray:
    """Reprojects a (band, y, x) float32 stack by area-weighted averaging (GDAL ``average``).

    Args:
        stack: Values on ``source``.
        source: Their grid.
        target: The grid to warp to (any CRS).

    Returns:
        (band, y, x) float32 on ``target``; NaN where the source does not reach.
    """
    memory = gdal.GetDriverByName("MEM").Create(
        "", source.width, source.height, stack.shape[0], gdal.GDT_Float32
    )
    memory.SetGeoTransform(source.geotransform)
    memory.SetProjection(spatial_reference(source.epsg).ExportToWkt())
    for i, values in enumerate(stack, start=1):
        memory.GetRasterBand(i).WriteArray(values)
    warped = gdal.Warp(
        "",
        memory,
        format="MEM",
        dstSRS=f"EPSG:{target.epsg}",
        outputBounds=target.bounds,
        width=target.width,
        height=target.height,
        resampleAlg="average",
        dstNodata=float("nan"),
        outputType=gdal.GDT_Float32,
    )
    return np.asarray(warped.ReadAsArray(), dtype=np.float32).reshape(
        stack.shape[0], target.height, target.width
    )


@dataclass(frozen=True, eq=False)
class L8Scene:
    """One simulated Landsat-8 Collection 2 Level-2 acquisition.

    Attributes:
        dn: Asset key → uint16 DN (0 fill).
        qa_pixel: uint16 QA_PIXEL bit flags.
        cloud_truth: uint8 CloudTruth codes.
        cloud_cover: Percentage of non-fill pixels flagged cloud or cirrus.
    """

    dn: dict[str, np.ndarray]
    qa_pixel: np.ndarray
    cloud_truth: np.ndarray
    cloud_cover: float


def _confidence(position: QA, high: np.ndarray, medium: np.ndarray | None = None) -> np.ndarray:
    """A 2-bit confidence field at ``position``: 3 high, 2 medium, 1 low."""
    levels = np.where(high, 3, 1)
    if medium is not None:
        levels = np.where(medium & ~high, 2, levels)
    return np.left_shift(levels, int(position)).astype(np.uint16)


def qa_pixel(sky: Sky, water: np.ndarray, snow: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """QA_PIXEL flags as Collection 2 sets them (clear = neither cloud nor dilated cloud).

    Args:
        sky: The clouds (30 m).
        water: Water pixels.
        snow: Snow pixels.
        fill: Pixels without data.

    Returns:
        uint16 QA_PIXEL (fill pixels are 1).
    """
    cloud = sky.thickness > 0
    dilated = dilate(cloud, DILATED_CLOUD_PX) & ~cloud
    cirrus = sky.cirrus > 0
    shadow = sky.shadow & ~cloud
    clear = ~(cloud | dilated)
    bits = {
        QA.DILATED_CLOUD: dilated,
        QA.CIRRUS: cirrus,
        QA.CLOUD: cloud,
        QA.CLOUD_SHADOW: shadow,
        QA.SNOW: snow & clear & ~shadow & ~cirrus,
        QA.CLEAR: clear,
        QA.WATER: water & clear & ~shadow & ~cirrus,
    }
    flags = np.zeros(sky.thickness.shape, dtype=np.uint16)
    for bit, mask in bits.items():
        flags |= np.left_shift(mask.astype(np.uint16), int(bit)).astype(np.uint16)
    flags |= _confidence(QA.CLOUD_CONFIDENCE, sky.thickness >= THICK_CLOUD, cloud)
    flags |= _confidence(QA.SHADOW_CONFIDENCE, shadow)
    flags |= _confidence(QA.SNOW_CONFIDENCE, snow)
    flags |= _confidence(QA.CIRRUS_CONFIDENCE, cirrus)
    flags[fill] = 1 << QA.FILL
    return flags


def simulate_l8(
    rng: np.random.Generator,
    landscape: Landscape,
    events: list[PlantedEvent],
    day: date,
    grid: Grid,
    settings: ScenarioConfig,
) -> L8Scene:
    """Simulates one Landsat-8 acquisition on its own 30 m grid.

    The 10 m ground is converted band by band to OLI (HLS table) and area-averaged onto ``grid``;
    clouds are drawn on the 30 m grid itself.

    Args:
        rng: Random generator of this acquisition.
        landscape: The landscape (its grid must cover ``grid``).
        events: Planted events.
        day: Acquisition day.
        grid: The Landsat scene grid.
        settings: Weather and noise.

    Returns:
        The scene.
    """
    ground = render_ground(landscape, events, day)
    oli = [msi_to_oli(ground.reflectance[S2_BAND_INDEX[band.asset]], band.asset) for band in L8_BANDS]
    stack = np.stack([*oli, ground.water.astype(np.float32), ground.snow.astype(np.float32)])
    warped = warp_average(stack, landscape.grid, grid)
    fill = np.isnan(warped).any(axis=0)
    sky = draw_sky(rng, grid.shape, grid.resolution, *draw_cloud_cover(rng, settings))
    gain = 1.0 + 0.01 * rng.standard_normal()
    band_index = [S2_BAND_INDEX[band.asset] for band in L8_BANDS]
    cloud = np.array(
        [msi_to_oli(CLOUD_SPECTRUM[i], band.asset) for band, i in zip(L8_BANDS, band_index, strict=True)]
    )
    cirrus = CIRRUS_SPECTRUM[band_index]
    seen = sky.see_through(np.nan_to_num(warped[: len(L8_BANDS)]) * gain, cloud, cirrus)
    dn = {}
    for band, values in zip(L8_BANDS, seen, strict=True):
        noisy = values + rng.normal(0.0, settings.noise_sigma, values.shape)
        encoded = np.clip(np.round((noisy - L8_OFFSET) / L8_SCALE), 1, 65535).astype(np.uint16)
        encoded[fill] = 0
        dn[band.asset] = encoded
    flags = qa_pixel(sky, warped[-2] >= 0.5, warped[-1] >= 0.5, fill)
    truth = sky.truth()
    truth[fill] = CloudTruth.NO_DATA
    cloudy = ((sky.thickness > 0) | (sky.cirrus > 0)) & ~fill
    return L8Scene(
        dn=dn,
        qa_pixel=flags,
        cloud_truth=truth,
        cloud_cover=round(100.0 * cloudy.sum() / max(1, (~fill).sum()), 2),
    )
