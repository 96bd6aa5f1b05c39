"""What the simulated ground looks like to the sensors: bands, end-member spectra and phenology.

Every surface is a linear mixture of a few end-member spectra (green leaves, bare soil, snow...)
whose fractions follow the day of year: crops are sown, green up, senesce and are harvested,
deciduous forest drops its leaves, meadows are mown. That is the smallest model in which NDVI,
NDSI and the SWIR bands behave as the later stages expect from real scenes, and the fractions
keep the truth exact (a pixel is "water" when water dominates its mixture).

The Landsat-8 view of the same ground comes from the NASA HLS band-pass adjustment table in
``eo_tasks.preprocess.harmonize``, the one the preprocessing inverts to harmonize Landsat-8 to Sentinel-2.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np


@dataclass(frozen=True)
class Band:
    """One spectral band of a product, with its Earth Search v1 asset key."""

    asset: str
    band_id: str
    common_name: str
    description: str
    center_um: float
    fwhm_um: float
    gsd: int


S2_BANDS: tuple[Band, ...] = (
    Band("blue", "B02", "blue", "Blue (band 2)", 0.490, 0.098, 10),
    Band("green", "B03", "green", "Green (band 3)", 0.560, 0.045, 10),
    Band("red", "B04", "red", "Red (band 4)", 0.665, 0.038, 10),
    Band("rededge1", "B05", "rededge", "Red edge 1 (band 5)", 0.704, 0.019, 20),
    Band("rededge2", "B06", "rededge", "Red edge 2 (band 6)", 0.740, 0.018, 20),
    Band("rededge3", "B07", "rededge", "Red edge 3 (band 7)", 0.783, 0.028, 20),
    Band("nir", "B08", "nir", "NIR 1 (band 8)", 0.842, 0.145, 10),
    Band("nir08", "B8A", "nir08", "NIR 2 (band 8A)", 0.865, 0.033, 20),
    Band("swir16", "B11", "swir16", "SWIR 1 (band 11)", 1.610, 0.143, 20),
    Band("swir22", "B12", "swir22", "SWIR 2 (band 12)", 2.190, 0.242, 20),
)
L8_BANDS: tuple[Band, ...] = (
    Band("blue", "SR_B2", "blue", "Blue (B2)", 0.48, 0.06, 30),
    Band("green", "SR_B3", "green", "Green (B3)", 0.56, 0.06, 30),
    Band("red", "SR_B4", "red", "Red (B4)", 0.655, 0.04, 30),
    Band("nir08", "SR_B5", "nir08", "Near infrared (B5)", 0.865, 0.03, 30),
    Band("swir16", "SR_B6", "swir16", "Short-wave infrared 1 (B6)", 1.61, 0.09, 30),
    Band("swir22", "SR_B7", "swir22", "Short-wave infrared 2 (B7)", 2.2, 0.19, 30),
)
S2_BAND_INDEX = {band.asset: i for i, band in enumerate(S2_BANDS)}

# Surface reflectance of the pure materials, in S2_BANDS order (blue ... swir22): hand-picked
# typical magnitudes with the shapes that matter: vegetation dark in the red and bright in the NIR,
# soil rising towards the SWIR, water dark beyond the green, snow bright in the visible and dark in
# the SWIR.
ENDMEMBERS: dict[str, tuple[float, ...]] = {
    "green_leaf": (0.030, 0.075, 0.035, 0.110, 0.300, 0.380, 0.420, 0.430, 0.230, 0.110),
    "broadleaf": (0.028, 0.060, 0.030, 0.095, 0.280, 0.340, 0.370, 0.380, 0.190, 0.085),
    "conifer": (0.018, 0.038, 0.020, 0.065, 0.170, 0.210, 0.230, 0.235, 0.115, 0.050),
    "shrub": (0.030, 0.060, 0.045, 0.095, 0.210, 0.250, 0.270, 0.280, 0.200, 0.115),
    "dry_vegetation": (0.060, 0.085, 0.105, 0.135, 0.170, 0.190, 0.205, 0.215, 0.310, 0.230),
    "leafless": (0.040, 0.055, 0.060, 0.085, 0.125, 0.145, 0.160, 0.165, 0.215, 0.150),
    "soil": (0.065, 0.095, 0.125, 0.155, 0.185, 0.200, 0.215, 0.225, 0.305, 0.255),
    "rock": (0.115, 0.140, 0.160, 0.180, 0.200, 0.210, 0.220, 0.225, 0.260, 0.220),
    "urban": (0.085, 0.095, 0.105, 0.120, 0.135, 0.145, 0.155, 0.160, 0.185, 0.165),
    "water": (0.045, 0.055, 0.030, 0.022, 0.014, 0.011, 0.009, 0.008, 0.004, 0.003),
    "snow": (0.880, 0.870, 0.850, 0.830, 0.790, 0.770, 0.750, 0.730, 0.070, 0.050),
    # Appended (keeps the indices above): charcoal and ash after a fire, dark with NIR below SWIR.
    "char": (0.025, 0.030, 0.032, 0.038, 0.045, 0.050, 0.055, 0.058, 0.085, 0.075),
}
N_BASE_ENDMEMBERS = 11  # the end-members before "char": the default scenes are mixed from these only
ENDMEMBER_INDEX = {name: i for i, name in enumerate(ENDMEMBERS)}
ENDMEMBER_MATRIX = np.array(list(ENDMEMBERS.values()), dtype=np.float32)  # (endmember, band)
CLOUD_SPECTRUM = np.array([0.60, 0.61, 0.62, 0.625, 0.63, 0.63, 0.63, 0.63, 0.52, 0.40], dtype=np.float32)
CIRRUS_SPECTRUM = np.array([0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.045, 0.045, 0.03, 0.02], dtype=np.float32)


class Surface(IntEnum):
    """The simulated surface types (finer than the platform classes: see SURFACE_CLASS)."""

    URBAN = 0
    CROPLAND = 1
    MEADOW = 2
    ALPINE_GRASS = 3
    BROADLEAF = 4
    CONIFER = 5
    SHRUB = 6
    ROCK = 7
    GLACIER = 8
    WATER = 9
    WETLAND = 10
    # Appended for the other landscapes (landscapes.py); indices above stay.
    MAQUIS = 11
    DRY_GRASS = 12
    OPEN_WOODLAND = 13
    MARSH = 14
    SAND = 15
    DECIDUOUS_SHRUB = 16


SURFACE_CLASS: dict[Surface, str] = {
    Surface.URBAN: "artificial",
    Surface.CROPLAND: "cropland",
    Surface.MEADOW: "grassland",
    Surface.ALPINE_GRASS: "grassland",
    Surface.BROADLEAF: "tree_cover",
    Surface.CONIFER: "tree_cover",
    Surface.SHRUB: "shrubland",
    Surface.ROCK: "bare",
    Surface.GLACIER: "snow_ice",
    Surface.WATER: "water",
    Surface.WETLAND: "wetland",
    Surface.MAQUIS: "shrubland",
    Surface.DRY_GRASS: "grassland",
    Surface.OPEN_WOODLAND: "tree_cover",
    Surface.MARSH: "wetland",
    Surface.SAND: "bare",
    Surface.DECIDUOUS_SHRUB: "shrubland",
}


@dataclass(frozen=True)
class CropCalendar:
    """A crop's season in days of the year of its harvest (negative: sown the autumn before)."""

    name: str
    sow: float
    green_up: float
    senescence: float
    harvest: float
    peak_cover: float


CROPS: tuple[CropCalendar, ...] = (
    CropCalendar("winter_cereal", -70, 95, 170, 195, 0.92),
    CropCalendar("maize", 115, 170, 250, 280, 0.95),
    CropCalendar("soybean", 130, 180, 245, 270, 0.85),
)
WINTER_COVER = 0.15  # green cover of an autumn-sown crop before its spring green-up


def _sigmoid(x: np.ndarray | float) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64))))


def _season(doy: float, up: float, down: float, up_days: float, down_days: float) -> float:
    """A smooth 0 → 1 → 0 seasonal curve: rises around ``up``, falls around ``down``."""
    return float(_sigmoid((doy - up) / up_days) * _sigmoid((down - doy) / down_days))


def mixture(background: str, **fractions: float) -> np.ndarray:
    """An end-member fraction vector: the named fractions, the remainder to ``background``.

    Args:
        background: End-member that takes what the named fractions leave.
        **fractions: End-member name → fraction.

    Returns:
        float32 vector over ENDMEMBERS summing to 1.
    """
    vector = np.zeros(len(ENDMEMBERS), dtype=np.float32)
    for name, value in fractions.items():
        vector[ENDMEMBER_INDEX[name]] = value
    vector[ENDMEMBER_INDEX[background]] += 1.0 - vector.sum()
    return vector


def meadow_green(doy: float) -> float:
    """Green cover of a valley meadow: spring growth, two mowing cuts, autumn decline."""
    growth = _season(doy, 95, 290, 12, 15)
    for cut in (165.0, 235.0):
        if doy >= cut:
            growth *= 1.0 - 0.6 * float(np.exp(-(doy - cut) / 18.0))
    return 0.3 + 0.55 * growth


def surface_fractions(surface: Surface, doy: float) -> np.ndarray:
    """End-member fractions of a surface type on a day of the year (snow cover not included).

    Args:
        surface: The surface type; CROPLAND gives bare soil (parcels have their own calendars).
        doy: Day of the year (1..366).

    Returns:
        float32 fraction vector over ENDMEMBERS.
    """
    if surface is Surface.URBAN:
        return mixture("urban", green_leaf=0.12 * _season(doy, 110, 290, 12, 12), soil=0.05)
    if surface is Surface.MEADOW:
        green = meadow_green(doy)
        return mixture("soil", green_leaf=green, dry_vegetation=0.35 * (1.0 - green))
    if surface is Surface.ALPINE_GRASS:
        green = 0.08 + 0.55 * _season(doy, 160, 255, 10, 10)
        return mixture("rock", green_leaf=green, dry_vegetation=0.45 * (1.0 - green))
    if surface is Surface.BROADLEAF:
        leaf_on = _season(doy, 115, 295, 7, 9)
        return mixture("dry_vegetation", broadleaf=0.92 * leaf_on, leafless=0.92 * (1.0 - leaf_on))
    if surface is Surface.CONIFER:
        return mixture("dry_vegetation", conifer=0.86 + 0.06 * _season(doy, 120, 290, 15, 15), soil=0.04)
    if surface is Surface.SHRUB:
        return mixture("rock", shrub=0.45 + 0.25 * _season(doy, 130, 285, 12, 12), dry_vegetation=0.25)
    if surface is Surface.ROCK:
        return mixture("rock", soil=0.1, dry_vegetation=0.05)
    if surface is Surface.GLACIER:
        return mixture("snow", rock=0.12 * _season(doy, 180, 270, 10, 10))
    if surface is Surface.WATER:
        return mixture("water")
    if surface is Surface.WETLAND:
        green = 0.2 + 0.45 * _season(doy, 120, 280, 12, 12)
        return mixture("water", green_leaf=green, dry_vegetation=0.25 * (1.0 - green / 0.65))
    return _other_fractions(surface, doy)


def dry_grass_green(doy: float) -> float:
    """Green cover of Mediterranean dry grassland: green from the autumn rains to May, brown in summer."""
    return 0.08 + 0.5 * (1.0 - _season(doy, 140, 300, 10, 15))


def _other_fractions(surface: Surface, doy: float) -> np.ndarray:
    """Fractions of the surfaces appended for the non-alpine landscapes."""
    if surface is Surface.MAQUIS:  # evergreen sclerophyll: dark, green all year, a little drier in summer
        return mixture(
            "soil", shrub=0.66 - 0.06 * _season(doy, 170, 270, 10, 10), conifer=0.1, dry_vegetation=0.1
        )
    if surface is Surface.DRY_GRASS:
        green = dry_grass_green(doy)
        return mixture("soil", green_leaf=green, dry_vegetation=0.75 * (1.0 - green))
    if surface is Surface.OPEN_WOODLAND:  # olive-like evergreen crowns over dry grass
        grass = dry_grass_green(doy)
        return mixture("soil", broadleaf=0.5, green_leaf=0.3 * grass, dry_vegetation=0.3 * (1.0 - grass))
    if surface is Surface.MARSH:  # reeds; high water from autumn to spring, drawn down in summer
        green = 0.1 + 0.5 * _season(doy, 110, 285, 12, 12)
        water = 0.2 + 0.3 * (1.0 - _season(doy, 150, 290, 15, 15))
        return mixture("soil", water=water, green_leaf=green, dry_vegetation=0.6 * (0.6 - green))
    if surface is Surface.SAND:
        return mixture("rock", soil=0.45, green_leaf=0.05 * _season(doy, 90, 200, 10, 10))
    if surface is Surface.DECIDUOUS_SHRUB:  # leafless in winter: looks like dry grass or bare ground
        leaf_on = _season(doy, 120, 290, 8, 9)
        return mixture(
            "soil",
            shrub=0.65 * leaf_on,
            leafless=0.15,
            dry_vegetation=0.45 * (1.0 - leaf_on),
        )
    return mixture("soil")


def crop_fractions(doy: float, season: np.ndarray, peak: np.ndarray, next_sowing: np.ndarray) -> np.ndarray:
    """End-member fractions of many crop parcels on one day.

    Args:
        doy: Day of the year.
        season: (n, 4) sow, green-up, senescence and harvest days of this year's crop per parcel.
        peak: (n,) peak green cover per parcel.
        next_sowing: (n,) day of this year on which next year's autumn crop is sown (inf if none).

    Returns:
        (n, len(ENDMEMBERS)) float32 fractions.
    """
    sow, up, down, harvest = season.T
    growing = _sigmoid((doy - up) / 12.0)
    before_harvest = (doy < harvest) & (doy >= sow)
    green = np.where(before_harvest, peak * growing * _sigmoid((down - doy) / 10.0), 0.0)
    green = np.where(before_harvest & (sow < 0), np.maximum(green, WINTER_COVER * (doy < down)), green)
    senescent = np.where(before_harvest, peak * growing * _sigmoid((doy - down) / 10.0), 0.0)
    residue = np.where(doy >= harvest, 0.3 * np.exp(-(doy - harvest) / 60.0), 0.0)
    sown_again = doy >= next_sowing
    autumn_green = np.where(sown_again, WINTER_COVER * _sigmoid((doy - next_sowing - 20.0) / 6.0), 0.0)
    dry = np.where(sown_again, 0.0, senescent + residue)
    fractions = np.zeros((len(peak), len(ENDMEMBERS)), dtype=np.float32)
    fractions[:, ENDMEMBER_INDEX["green_leaf"]] = green + autumn_green
    fractions[:, ENDMEMBER_INDEX["dry_vegetation"]] = dry
    fractions[:, ENDMEMBER_INDEX["soil"]] = 1.0 - green - autumn_green - dry
    return fractions


Snowline = tuple[tuple[float, ...], tuple[float, ...]]  # (days of year, elevation ranks) to interpolate
ALPINE_SNOWLINE: Snowline = ((0.0, 90.0, 170.0, 280.0, 330.0, 367.0), (0.70, 0.70, 0.995, 0.995, 0.70, 0.70))


def snowline_rank(doy: float, line: Snowline = ALPINE_SNOWLINE) -> float:
    """Elevation rank (0 valley … 1 summit) above which the ground is snow-covered on a day.

    In the alpine valley (the default ``line``) snow reaches down to the shrub belt (rank 0.70)
    from late November to March, melts upwards from April to June and is gone from everything but
    the glacier in July–September. Other landscapes pass their own line (landscapes.py).
    """
    return float(np.interp(doy, line[0], line[1]))


SNOW_TRANSITION = 0.02  # rank interval over which the snow cover goes from 0 to 1


def snow_cover(elevation_rank: np.ndarray, doy: float, line: Snowline = ALPINE_SNOWLINE) -> np.ndarray:
    """Fraction of seasonal snow cover per pixel from its elevation rank."""
    return np.clip((elevation_rank - snowline_rank(doy, line)) / SNOW_TRANSITION, 0.0, 1.0).astype(np.float32)


def ndvi(reflectance: np.ndarray) -> np.ndarray:
    """NDVI (B08, B04) of a (band, y, x) MSI reflectance stack."""
    nir = reflectance[S2_BAND_INDEX["nir"]]
    red = reflectance[S2_BAND_INDEX["red"]]
    return np.asarray((nir - red) / np.maximum(nir + red, 1e-6))
