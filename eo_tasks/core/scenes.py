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


def boa_offset_to_remove(properties: Mapping[str, Any]) -> int:
    """The DN offset still present in a Sentinel-2 L2A scene (1000 or 0).

    Processing baseline 04.00 (January 2022) added DN = 10000·ρ + 1000. Catalogues that remove it
    say so with ``earthsearch:boa_offset_applied``; when that flag is true the offset is gone.

    Args:
        properties: Scene properties with ``s2:processing_baseline`` and optionally
            ``earthsearch:boa_offset_applied``.

    Returns:
        The offset to subtract from the DNs before scaling.
    """
    if properties.get("earthsearch:boa_offset_applied") is True:
        return 0
    baseline = str(properties.get("s2:processing_baseline") or "00.00")
    try:
        major, minor = (int(part) for part in baseline.split(".")[:2])
    except ValueError:
        return 0
    return 1000 if (major, minor) >= (4, 0) else 0


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
