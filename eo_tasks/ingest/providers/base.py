"""The one small interface every scene provider implements.

Search an area and a time range; say how to download a scene's files.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests

from eo_tasks.core.scenes import AssetRef, SceneRecord


@dataclass(frozen=True)
class SearchQuery:
    """Scenes intersecting ``bbox`` (WGS84 lon/lat) acquired in ``[start, end)``."""

    bbox: tuple[float, float, float, float]
    start: dt.datetime
    end: dt.datetime
    collections: Sequence[str]

    @classmethod
    def calendar_year(
        cls,
        bbox: tuple[float, float, float, float],
        year: int,
        collections: Sequence[str] = ("sentinel-2-l2a", "landsat-c2-l2"),
    ) -> SearchQuery:
        """The scenes of one calendar year (UTC) over ``bbox``, S2 L2A and Landsat C2 L2 by default."""
        return cls(
            bbox,
            dt.datetime(year, 1, 1, tzinfo=dt.UTC),
            dt.datetime(year + 1, 1, 1, tzinfo=dt.UTC),
            collections,
        )


@dataclass(frozen=True)
class Credentials:
    """What an Airflow connection holds for a provider (never logged, never in YAML)."""

    login: str | None = None
    password: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Credentials(login={self.login!r}, password=***, extra keys={sorted(self.extra)})"


class SceneProvider:
    """Base class: a provider searches, then hands out download-ready asset references."""

    name = "base"

    def search(self, query: SearchQuery) -> Iterator[SceneRecord]:
        """Yields the scenes matching ``query`` (every page)."""
        raise NotImplementedError

    def download_assets(self, provider_id: str, assets: Sequence[AssetRef]) -> list[AssetRef]:
        """The assets with hrefs that can be fetched now (signed, resolved); default: as catalogued."""
        return list(assets)

    def session(self) -> requests.Session:
        """An HTTP session carrying the provider's authentication."""
        return requests.Session()


def bbox_wkt(bbox: tuple[float, float, float, float]) -> str:
    """WKT polygon of a lon/lat bounding box."""
    w, s, e, n = bbox
    return f"POLYGON(({w} {s},{e} {s},{e} {n},{w} {n},{w} {s}))"
