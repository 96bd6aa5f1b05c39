"""Sentinel-2 L2A from a DHuS hub, through sentinelsat.

sentinelsat speaks the DHuS OpenSearch/OData API of the old Copernicus Open Access Hub (closed in
October 2023) and of the national mirrors that still run DHuS. It cannot download from the
Copernicus Data Space Ecosystem (its own README says so): use the ``cdse`` STAC source for that.
A scene is one SAFE zip; its MD5 comes from the product's OData entry at download time.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import requests
import requests.adapters

from eo_tasks.core.errors import ProviderError
from eo_tasks.core.scenes import AssetRef, SceneRecord
from eo_tasks.ingest.providers.base import Credentials, SceneProvider, SearchQuery, bbox_wkt

_BASELINE = re.compile(r"_N(\d{2})(\d{2})_")


class _DefaultTimeout(requests.adapters.HTTPAdapter):
    """Gives every request a timeout: sentinelsat sets ``session.timeout``, which requests ignores."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float | None, float | None] | None = None,
        verify: bool | str = True,
        cert: str | tuple[str, str] | None = None,
        proxies: dict[str, str] | None = None,
    ) -> requests.Response:
        """Sends with the default timeout unless the caller gave one."""
        timeout = self.timeout if timeout is None else timeout
        return super().send(request, stream, timeout, verify, cert, proxies)


def baseline_from_title(title: str) -> str | None:
    """The processing baseline of a SAFE product name (``..._N0400_...`` → ``"04.00"``)."""
    match = _BASELINE.search(title)
    return f"{match.group(1)}.{match.group(2)}" if match else None


class SentinelsatProvider(SceneProvider):
    """A DHuS hub (API URL and account from an Airflow connection)."""

    name = "sentinelsat"

    def __init__(self, api_url: str, credentials: Credentials | None, timeout: float = 60.0) -> None:
        """Opens the hub's API.

        Args:
            api_url: The hub's DHuS API URL.
            credentials: The hub account.
            timeout: Seconds of silence before a search or OData request is abandoned.
        """
        from sentinelsat import SentinelAPI

        user = credentials.login if credentials else None
        password = credentials.password if credentials else None
        self.api = SentinelAPI(user, password, api_url=api_url, show_progressbars=False, timeout=timeout)
        for prefix in ("http://", "https://"):
            self.api.session.mount(prefix, _DefaultTimeout(timeout))

    def search(self, query: SearchQuery) -> Iterator[SceneRecord]:
        """Queries the hub for S2MSI2A products over the bbox and time range (all pages)."""
        from sentinelsat.exceptions import SentinelAPIError

        if "sentinel-2-l2a" not in query.collections:
            return
        try:
            products = self.api.query(
                area=bbox_wkt(query.bbox),
                date=(query.start, query.end),
                platformname="Sentinel-2",
                producttype="S2MSI2A",
            )
        except (SentinelAPIError, requests.RequestException) as err:
            raise ProviderError(f"DHuS search at {self.api.api_url} failed: {err}") from err
        for uuid, product in products.items():
            yield self._to_scene(uuid, product)

    def _to_scene(self, uuid: str, product: Mapping[str, Any]) -> SceneRecord:
        title = str(product["title"])
        when = product["beginposition"]
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        href = f"{self.api.api_url}odata/v1/Products('{uuid}')/$value"
        return SceneRecord(
            id=title,
            collection="sentinel-2-l2a",
            platform=str(product.get("platformserialidentifier", "Sentinel-2")).lower().replace(" ", "-"),
            datetime=when,
            cloud_cover=float(product["cloudcoverpercentage"]) if "cloudcoverpercentage" in product else None,
            provider=self.name,
            provider_id=uuid,
            footprint_wkt=str(product["footprint"]),
            assets=(AssetRef(band="product", href=href),),
            properties={"s2:processing_baseline": baseline_from_title(title), "format": "SAFE"},
        )

    def download_assets(self, provider_id: str, assets: Sequence[AssetRef]) -> list[AssetRef]:
        """Looks up the product's size and MD5 in OData; refuses products moved to the long-term archive."""
        from sentinelsat.exceptions import SentinelAPIError

        try:
            info = self.api.get_product_odata(provider_id)
        except (SentinelAPIError, requests.RequestException) as err:
            raise ProviderError(f"DHuS product {provider_id}: {err}") from err
        if not info.get("Online", True):
            raise ProviderError(f"DHuS product {provider_id} is in the long-term archive; retry later")
        checksum = f"md5:{info['md5']}" if "md5" in info else None
        return [AssetRef(band="product", href=str(info["url"]), checksum=checksum, size=int(info["size"]))]

    def session(self) -> requests.Session:
        """The session of the sentinelsat client (it carries the hub account)."""
        return self.api.session
