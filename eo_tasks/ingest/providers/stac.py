"""STAC sources: a local static archive (the embedded default) and STAC APIs.

STAC APIs are searched with pystac-client (paging included); each known API has a profile that
maps its collection ids and says how its files are fetched: Earth Search (public HTTPS), Planetary
Computer (hrefs signed with a SAS token), the Copernicus Data Space Ecosystem (an OAuth access
token from the CDSE identity service, sent as a bearer token), USGS LandsatLook (search only: its
files need an EROS session or requester-pays S3). Asset keys are mapped to the platform's band
names (``scenes.platform_band``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pystac
import requests

from eo_tasks.core.errors import ProviderError
from eo_tasks.core.redact import redact, scrubbed
from eo_tasks.core.scenes import (
    BANDS_BY_COLLECTION,
    AssetRef,
    SceneRecord,
    canonical_platform,
    epsg_code,
    mgrs_tile,
    platform_band,
    resolution_of,
)
from eo_tasks.ingest.providers.base import Credentials, SceneProvider, SearchQuery

log = logging.getLogger(__name__)

# Item properties later stages need (reflectance scaling, grids, provenance).
KEPT_PROPERTIES = (
    "s2:processing_baseline",
    "earthsearch:boa_offset_applied",
    "proj:epsg",
    "proj:code",
    "s2:mgrs_tile",
    "landsat:wrs_path",
    "landsat:wrs_row",
    "landsat:collection_category",
    "processing:version",
    "grid:code",
    "mgrs:utm_zone",
    "mgrs:latitude_band",
    "mgrs:grid_square",
)
# Bands whose raster offset is the Sentinel-2 BOA offset (the quality layers have none).
_QUALITY_BANDS = frozenset({"scl", "qa_pixel"})


@dataclass(frozen=True)
class StacProfile:
    """How one STAC API names its collections and serves its files."""

    url: str
    collections: Mapping[str, str]  # platform collection -> the API's collection id
    auth: str = "none"  # none | sas (Planetary Computer) | oauth-password (CDSE)
    token_url: str | None = None
    downloadable: bool = True


PROFILES: dict[str, StacProfile] = {
    "earth-search": StacProfile(
        url="https://earth-search.aws.element84.com/v1",
        collections={"sentinel-2-l2a": "sentinel-2-l2a", "landsat-c2-l2": "landsat-c2-l2"},
    ),
    "planetary-computer": StacProfile(
        url="https://planetarycomputer.microsoft.com/api/stac/v1",
        collections={"sentinel-2-l2a": "sentinel-2-l2a", "landsat-c2-l2": "landsat-c2-l2"},
        auth="sas",
    ),
    "cdse": StacProfile(
        url="https://stac.dataspace.copernicus.eu/v1",
        collections={"sentinel-2-l2a": "sentinel-2-l2a"},
        auth="oauth-password",
        token_url="https://identity.dataspace.copernicus.eu/auth/realms/CDSE/protocol/openid-connect/token",
    ),
    "usgs": StacProfile(
        url="https://landsatlook.usgs.gov/stac-server",
        collections={"landsat-c2-l2": "landsat-c2l2-sr"},
        downloadable=False,
    ),
    "stac": StacProfile(
        url="", collections={"sentinel-2-l2a": "sentinel-2-l2a", "landsat-c2-l2": "landsat-c2-l2"}
    ),
}


def geometry_wkt(geometry: Mapping[str, Any]) -> str:
    """WKT of a GeoJSON geometry."""
    from osgeo import ogr

    geom = ogr.CreateGeometryFromJson(json.dumps(geometry))
    if geom is None:
        raise ProviderError(f"invalid item geometry: {str(geometry)[:200]}")
    return str(geom.ExportToWkt())


def _checksum(asset: Mapping[str, Any]) -> str | None:
    value = asset.get("file:checksum")
    return f"multihash:{value}" if value else None


def _download_href(asset: Mapping[str, Any]) -> str:
    """The asset's HTTPS href where the main one is an S3 URL and an HTTPS alternate exists."""
    href = str(asset["href"])
    if href.startswith("s3://"):
        https = asset.get("alternate", {}).get("https", {}).get("href")
        if https:
            return str(https)
    return href


def item_to_scene(
    item: Mapping[str, Any], collection: str, provider: str, base_href: str | None = None
) -> SceneRecord | None:
    """Converts a STAC item (as a dict) to a :class:`SceneRecord`; None if it lacks a band we need.

    Args:
        item: The item's JSON.
        collection: The platform collection it belongs to.
        provider: Provider name recorded with the scene.
        base_href: Folder that relative asset hrefs are relative to (static catalogs).
    """
    chosen: dict[str, tuple[int, AssetRef]] = {}
    raw: dict[str, Mapping[str, Any]] = {}
    for key, asset in item.get("assets", {}).items():
        band = platform_band(collection, key)
        if band is None:
            continue
        href = _download_href(asset)
        if base_href and "://" not in href and not href.startswith("/"):
            href = str((Path(base_href) / href).resolve())
        ref = AssetRef(band=band, href=href, checksum=_checksum(asset), size=asset.get("file:size"))
        rank = resolution_of(key) or 0  # the finest resolution wins where a band comes at several
        if band not in chosen or rank < chosen[band][0]:
            chosen[band] = (rank, ref)
            raw[band] = asset
    props = item.get("properties", {})
    missing = set(BANDS_BY_COLLECTION[collection]) - set(chosen)
    if missing:
        log.warning("%s: skipped, no asset for band(s) %s", item.get("id"), sorted(missing))
        return None
    return SceneRecord(
        id=str(item["id"]),
        collection=collection,
        platform=canonical_platform(props.get("platform", collection.split("-")[0])),
        datetime=dt.datetime.fromisoformat(str(props["datetime"]).replace("Z", "+00:00")),
        cloud_cover=None if props.get("eo:cloud_cover") is None else float(props["eo:cloud_cover"]),
        provider=provider,
        provider_id=str(item["id"]),
        footprint_wkt=geometry_wkt(item["geometry"]),
        assets=tuple(ref for _, ref in sorted(chosen.values(), key=lambda r: r[1].band)),
        properties=scene_properties(props, raw, collection),
    )


def _raster_offset_scale(asset: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """An asset's ``raster:offset``/``raster:scale`` (asset level, CDSE) or its first ``raster:bands``."""
    if "raster:offset" in asset or "raster:scale" in asset:
        return asset.get("raster:offset"), asset.get("raster:scale")
    bands = asset.get("raster:bands") or [{}]
    return bands[0].get("offset"), bands[0].get("scale")


def scene_properties(
    props: Mapping[str, Any], assets: Mapping[str, Mapping[str, Any]], collection: str
) -> dict[str, Any]:
    """The item properties later stages need, normalised across hubs.

    Adds ``s2:mgrs_tile`` from ``grid:code``/``mgrs:*``, ``proj:epsg`` from the item or, where
    only the assets carry it (CDSE), from the band assets' ``proj:code``/``proj:epsg``, and
    ``raster:offset_dn`` (the reflectance bands' common raster offset in DN, Sentinel-2 only).
    """
    kept = {k: props[k] for k in KEPT_PROPERTIES if k in props}
    tile = mgrs_tile(props)
    if tile:
        kept["s2:mgrs_tile"] = tile
    epsg = epsg_code(props.get("proj:epsg")) or epsg_code(props.get("proj:code"))
    if epsg is None:
        codes = {epsg_code(a.get("proj:epsg")) or epsg_code(a.get("proj:code")) for a in assets.values()}
        codes.discard(None)
        epsg = codes.pop() if len(codes) == 1 else None
    if epsg is not None:
        kept["proj:epsg"] = epsg
    if collection == "sentinel-2-l2a":
        offsets: set[int | None] = set()
        for band, asset in assets.items():
            if band in _QUALITY_BANDS:
                continue
            offset, scale = _raster_offset_scale(asset)
            offsets.add(round(-float(offset) / float(scale)) if offset is not None and scale else None)
        if len(offsets) == 1 and None not in offsets:  # only a statement every band makes counts
            kept["raster:offset_dn"] = offsets.pop()
    return kept


def _overlaps(bbox: Sequence[float], query: SearchQuery) -> bool:
    w, s, e, n = query.bbox
    return not (bbox[2] < w or bbox[0] > e or bbox[3] < s or bbox[1] > n)


class LocalArchiveProvider(SceneProvider):
    """A static STAC catalog on disk (``catalog.json`` → collections → items), read with pystac."""

    name = "local"

    def __init__(self, catalog_path: str) -> None:
        self.catalog_path = catalog_path

    def search(self, query: SearchQuery) -> Iterator[SceneRecord]:
        """Walks the catalog's collections and yields the items matching the query."""
        try:
            catalog = pystac.Catalog.from_file(self.catalog_path)
        except (OSError, pystac.STACError, json.JSONDecodeError) as err:
            raise ProviderError(f"cannot read the local archive {self.catalog_path}: {err}") from err
        for child in catalog.get_children():
            if child.id not in query.collections:
                continue
            for item in child.get_items():
                when = item.datetime
                if (
                    when is None
                    or not (query.start <= when < query.end)
                    or not _overlaps(item.bbox or [], query)
                ):
                    continue
                base = str(Path(item.get_self_href() or self.catalog_path).parent)
                scene = item_to_scene(item.to_dict(transform_hrefs=False), child.id, self.name, base)
                if scene is not None:
                    yield scene


@dataclass
class _Token:
    value: str
    expires: float


@dataclass
class StacApiProvider(SceneProvider):
    """A STAC API searched with pystac-client."""

    profile_name: str
    url: str | None = None
    credentials: Credentials | None = None
    timeout: float = 60.0  # seconds of silence before a request to the API is abandoned
    _tokens: dict[str, _Token] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self.profile = PROFILES[self.profile_name]
        self.name = self.profile_name
        self.api_url = (self.url or self.profile.url).rstrip("/")
        if not self.api_url:
            raise ProviderError("a generic STAC source needs a url")

    def search(self, query: SearchQuery) -> Iterator[SceneRecord]:
        """Searches every requested collection, following the API's paging."""
        from pystac_client import Client
        from pystac_client.exceptions import APIError

        try:
            client = Client.open(self.api_url, headers=self._search_headers(), timeout=self.timeout)
            for collection in query.collections:
                remote = self.profile.collections.get(collection)
                if remote is None:
                    log.info("%s does not serve %s", self.name, collection)
                    continue
                search = client.search(
                    collections=[remote],
                    bbox=query.bbox,
                    datetime=[query.start, query.end - dt.timedelta(microseconds=1)],
                    limit=100,
                )
                for page in search.pages_as_dicts():
                    for item in page.get("features", []):
                        scene = item_to_scene(item, collection, self.name)
                        if scene is not None:
                            yield scene
        except (APIError, requests.RequestException, pystac.STACError) as err:
            raise ProviderError(redact(f"{self.name} search at {self.api_url} failed: {err}")) from scrubbed(
                err
            )

    def _search_headers(self) -> dict[str, str]:
        """A bearer token for APIs that want one for searching (connection extra ``token``)."""
        token = self.credentials.extra.get("token") if self.credentials else None
        return {"Authorization": f"Bearer {token}"} if token else {}

    def download_assets(self, provider_id: str, assets: Sequence[AssetRef]) -> list[AssetRef]:
        """Signs (Planetary Computer) or checks (S3-only, USGS) the hrefs before a download."""
        if not self.profile.downloadable:
            raise ProviderError(
                f"{self.name}: files need an EROS session or requester-pays S3 access, which this platform "
                "does not implement; take Landsat from planetary-computer instead"
            )
        for asset in assets:
            if asset.href.startswith("s3://"):
                raise ProviderError(f"{self.name}: {asset.href} is requester-pays S3 with no HTTPS alternate")
        if self.profile.auth != "sas":
            return list(assets)
        return [AssetRef(a.band, self._sign(a.href), a.checksum, a.size) for a in assets]

    def _sign(self, href: str) -> str:
        """Appends a Planetary Computer SAS token for the href's storage container."""
        from urllib.parse import urlparse

        parts = urlparse(href)
        account = parts.netloc.split(".")[0]
        container = parts.path.lstrip("/").split("/")[0]
        token = self._cached_token(f"{account}/{container}", self._fetch_sas_token)
        return f"{href}{'&' if parts.query else '?'}{token}"

    def _fetch_sas_token(self, key: str) -> _Token:
        # The SAS endpoint sits next to the STAC API: /api/stac/v1 -> /api/sas/v1/token/<account>/<container>
        url = self.api_url.replace("/api/stac/v1", "/api/sas/v1/token") + f"/{key}"
        try:
            response = requests.get(url, timeout=30)
            response.raise_for_status()
            body = response.json()
            expiry = dt.datetime.fromisoformat(body["msft:expiry"].replace("Z", "+00:00")).timestamp()
            return _Token(value=body["token"], expires=expiry)
        except (requests.RequestException, ValueError, KeyError) as err:
            raise ProviderError(
                redact(f"{self.name}: no SAS token for {key} from {url}: {err}")
            ) from scrubbed(err)

    def _cached_token(self, key: str, fetch: Callable[[str], _Token]) -> str:
        with self._lock:
            token = self._tokens.get(key)
            if token is None or token.expires - time.time() < 60:
                token = fetch(key)
                self._tokens[key] = token
            return token.value

    def session(self) -> requests.Session:
        """A session with a bearer token for CDSE, plain otherwise."""
        session = requests.Session()
        if self.profile.auth == "oauth-password":
            session.headers["Authorization"] = (
                f"Bearer {self._cached_token('oauth', self._fetch_oauth_token)}"
            )
        return session

    def _fetch_oauth_token(self, _: str) -> _Token:
        if not self.credentials or not self.credentials.login or not self.credentials.password:
            raise ProviderError(f"{self.name}: the connection needs a login and password for downloads")
        token_url = self.credentials.extra.get("token_url", self.profile.token_url)
        try:
            response = requests.post(
                str(token_url),
                data={
                    "grant_type": "password",
                    "client_id": self.credentials.extra.get("client_id", "cdse-public"),
                    "username": self.credentials.login,
                    "password": self.credentials.password,
                },
                timeout=30,
            )
            if response.status_code in (400, 401):
                raise ProviderError(f"{self.name}: the identity service refused the credentials")
            response.raise_for_status()
            body = response.json()
            expires = time.time() + float(body.get("expires_in", 600))
            return _Token(value=body["access_token"], expires=expires)
        except (requests.RequestException, ValueError, KeyError) as err:
            raise ProviderError(
                redact(f"{self.name}: no access token from {token_url}: {err}")
            ) from scrubbed(err)
