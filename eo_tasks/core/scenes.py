"""What the platform knows about a scene before and after download, whatever provider it came from.

Providers name bands differently (Earth Search ``red``, Planetary Computer ``B04``, CDSE
``B04_10m``); everything after discovery uses the platform's names from :data:`S2_BANDS` and
:data:`LANDSAT_BANDS`. The reflectance metadata (processing baseline, whether the provider already
removed the Sentinel-2 offset) travels with the scene so preprocessing never applies it twice.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

S2_BANDS = (
    "blue",
    "green",
    "red",
    "rededge1",
    "rededge2",
    "rededge3",
    "nir",
    "nir08",
    "swir16",
    "swir22",
    "scl",
)
LANDSAT_BANDS = ("blue", "green", "red", "nir08", "swir16", "swir22", "qa_pixel")
BANDS_BY_COLLECTION = {"sentinel-2-l2a": S2_BANDS, "landsat-c2-l2": LANDSAT_BANDS}

# Sentinel-2 band ids (and other providers' spellings) -> platform band names.
_S2_BAND_IDS = {
    "B02": "blue",
    "B03": "green",
    "B04": "red",
    "B05": "rededge1",
    "B06": "rededge2",
    "B07": "rededge3",
    "B08": "nir",
    "B8A": "nir08",
    "B11": "swir16",
    "B12": "swir22",
    "SCL": "scl",
}
_LANDSAT_ALIASES = {
    "SR_B2": "blue",
    "SR_B3": "green",
    "SR_B4": "red",
    "SR_B5": "nir08",
    "SR_B6": "swir16",
    "SR_B7": "swir22",
    "QA_PIXEL": "qa_pixel",
    "nir": "nir08",
}
_RESOLUTION_SUFFIX = re.compile(r"_(\d+)m$")


def platform_band(collection: str, key: str) -> str | None:
    """Maps a provider's asset key to the platform's band name, or None for assets we don't use.

    Args:
        collection: ``sentinel-2-l2a`` or ``landsat-c2-l2``.
        key: The asset key, e.g. ``red``, ``B04``, ``B04_10m``, ``SR_B4``.

    Returns:
        The band name, e.g. ``red``.
    """
    bands = BANDS_BY_COLLECTION[collection]
    if key in bands:
        return key
    base = _RESOLUTION_SUFFIX.sub("", key)
    if collection == "sentinel-2-l2a":
        name = _S2_BAND_IDS.get(base.upper())
    else:
        name = _LANDSAT_ALIASES.get(base) or _LANDSAT_ALIASES.get(base.upper())
    return name if name in bands else None


def resolution_of(key: str) -> int | None:
    """The resolution encoded in an asset key such as ``B04_10m`` (None when absent)."""
    match = _RESOLUTION_SUFFIX.search(key)
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class AssetRef:
    """One file of a scene at its provider.

    Attributes:
        band: Platform band name.
        href: URL or local path at the provider.
        checksum: ``"<algorithm>:<hex>"`` with algorithm ``md5``, ``sha256`` or ``multihash``, if known.
        size: Bytes, if known.
    """

    band: str
    href: str
    checksum: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class SceneRecord:
    """A scene as discovered at a provider."""

    id: str
    collection: str
    platform: str
    datetime: dt.datetime
    cloud_cover: float | None
    provider: str
    provider_id: str
    footprint_wkt: str
    assets: tuple[AssetRef, ...]
    properties: Mapping[str, Any] = field(default_factory=dict)

    def asset(self, band: str) -> AssetRef:
        """The asset of ``band``."""
        for asset in self.assets:
            if asset.band == band:
                return asset
        raise KeyError(f"{self.id} has no asset {band!r}")


def _baseline(properties: Mapping[str, Any]) -> tuple[int, int] | None:
    """The processing baseline as (major, minor), None when unreadable.

    From ``s2:processing_baseline`` (Earth Search, PC, SAFE) or ``processing:version`` (CDSE).
    """
    for key in ("s2:processing_baseline", "processing:version"):
        value = properties.get(key)
        if value in (None, ""):
            continue
        try:
            major, minor = (int(part) for part in str(value).split(".")[:2])
        except ValueError:
            continue
        return major, minor
    return None


def boa_offset_to_remove(properties: Mapping[str, Any]) -> int:
    """The DN offset still present in a Sentinel-2 L2A scene's files (1000 or 0).

    Processing baseline 04.00 (January 2022) added DN = 10000·ρ + 1000. The evidence, in order:

    1. ``earthsearch:boa_offset_applied`` (Earth Search): true means Element 84 already removed
       the offset from the COGs, so nothing is left to remove, whatever the item's ``raster:bands``
       say (Earth Search publishes ``offset`` −0.1 on those items too: applying it would remove the
       offset twice).
    2. ``s2:boa_add_offset`` (read from a SAFE product's ``MTD_MSIL2A.xml``, DN units, e.g. −1000).
    3. ``raster:offset_dn``: the band assets' ``raster:offset`` / ``raster:scale`` in DN (CDSE:
       −0.1 / 0.0001 → 1000).
    4. The processing baseline (``s2:processing_baseline`` or CDSE's ``processing:version``).

    Args:
        properties: Scene properties as kept at discovery (or read from the SAFE metadata).

    Returns:
        The offset to subtract from the DNs before scaling.
    """
    if properties.get("earthsearch:boa_offset_applied") is True:
        return 0
    for key in ("s2:boa_add_offset", "raster:offset_dn"):
        value = properties.get(key)
        if value is not None:
            return abs(round(float(value)))
    baseline = _baseline(properties)
    return 1000 if baseline is not None and baseline >= (4, 0) else 0


# ---------------------------------------------------------------------------- platforms
# Landsat-9's OLI-2 has Landsat-8 OLI's bands and spectral responses, so one OLI→MSI
# harmonization (HLS coefficients) serves both. Landsat 4/5 TM and 7 ETM+ have other bands, and
# ETM+ has had scan-line gaps since 2003: they are refused, never harmonized as if they were OLI.
ACCEPTED_PLATFORMS = {
    "sentinel-2-l2a": frozenset({"sentinel-2a", "sentinel-2b", "sentinel-2c", "sentinel-2"}),
    "landsat-c2-l2": frozenset({"landsat-8", "landsat-9"}),
}
_PLATFORM_SPELLING = re.compile(r"[\s_]+")


def canonical_platform(name: object) -> str:
    """One spelling per platform: ``LANDSAT_8``, ``landsat_8``, ``Landsat 8`` → ``landsat-8``."""
    return _PLATFORM_SPELLING.sub("-", str(name).strip()).lower()


def platform_refusal(collection: str, platform: str) -> str | None:
    """Why a scene's platform is not used (None when it is accepted).

    Args:
        collection: ``sentinel-2-l2a`` or ``landsat-c2-l2``.
        platform: A canonical platform name (:func:`canonical_platform`).
    """
    accepted = ACCEPTED_PLATFORMS.get(collection, frozenset())
    if platform in accepted:
        return None
    if platform in ("landsat-4", "landsat-5", "landsat-7"):
        sensor = "ETM+" if platform == "landsat-7" else "TM"
        return (
            f"platform {platform} refused: {sensor} has other bands than OLI (and ETM+ scan-line gaps); "
            "only landsat-8 and landsat-9 (OLI/OLI-2) are harmonized to Sentinel-2"
        )
    return f"platform {platform!r} is not accepted for {collection} (accepted: {sorted(accepted)})"


# ---------------------------------------------------------------------------- ids
# An item id becomes a folder name: letters, digits, '.', '_', '-', starting with a letter or a digit.
ITEM_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
PROVIDER_NAME = re.compile(r"[a-z][a-z0-9-]{0,39}")


def checked_item_id(item_id: object) -> str:
    """``item_id`` if it is safe as a file name, else :class:`~eo_tasks.core.errors.ProviderError`.

    Raises:
        ProviderError: The id has a path separator, ``..``, a control character or is too long.
    """
    from eo_tasks.core.errors import ProviderError

    value = str(item_id)
    if not ITEM_ID.fullmatch(value) or ".." in value:
        raise ProviderError(f"refused item id {value[:80]!r}: not of the form {ITEM_ID.pattern} (no '..')")
    return value


def scoped_id(provider: str, item_id: str) -> str:
    """The catalog id of a provider's item, ``<provider>/<item id>``: two sources' ids never collide."""
    from eo_tasks.core.errors import ProviderError

    if not PROVIDER_NAME.fullmatch(provider):
        raise ProviderError(f"refused provider name {provider[:40]!r}")
    return f"{provider}/{checked_item_id(item_id)}"


def mgrs_tile(properties: Mapping[str, Any]) -> str | None:
    """The MGRS tile (``33TWM``) from ``s2:mgrs_tile``, ``grid:code`` (``MGRS-33TWM``) or ``mgrs:*``."""
    if properties.get("s2:mgrs_tile"):
        return str(properties["s2:mgrs_tile"])
    code = str(properties.get("grid:code") or "")
    if code.upper().startswith("MGRS-"):
        return code[5:]
    parts = [properties.get(k) for k in ("mgrs:utm_zone", "mgrs:latitude_band", "mgrs:grid_square")]
    if all(p not in (None, "") for p in parts):
        return f"{int(str(parts[0])):02d}{parts[1]}{parts[2]}"
    return None


def epsg_code(value: object) -> int | None:
    """An EPSG code from ``proj:epsg`` (32633) or ``proj:code`` (``"EPSG:32633"``); None otherwise."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value)
    if text.upper().startswith("EPSG:"):
        text = text[5:]
    return int(text) if text.isdigit() else None


@dataclass(frozen=True)
class SceneInput:
    """A ready scene as preprocessing needs it: files per band and the reflectance metadata."""

    id: str
    collection: str
    datetime: dt.datetime
    files: Mapping[str, str]
    properties: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def in_place(cls, record: SceneRecord) -> SceneInput:
        """A discovered scene read where it lies (a local archive), without a download."""
        files = {a.band: a.href for a in record.assets}
        return cls(record.id, record.collection, record.datetime, files, dict(record.properties))

    @property
    def sensor(self) -> str:
        """``S2`` or ``L8``."""
        return "S2" if self.collection == "sentinel-2-l2a" else "L8"
