"""Scene providers behind one interface (:class:`SceneProvider`), chosen by an AOI source's ``provider``."""

from __future__ import annotations

from eo_tasks.core.aoi_sections import SourceSpec
from eo_tasks.ingest.providers.base import Credentials, SceneProvider, SearchQuery

__all__ = ["Credentials", "SceneProvider", "SearchQuery", "make_provider"]


def make_provider(source: SourceSpec, credentials: Credentials | None = None) -> SceneProvider:
    """Builds the provider an AOI source names.

    Args:
        source: The AOI's source entry.
        credentials: From the source's Airflow connection, if it names one.
    """
    if source.provider == "local":
        from eo_tasks.ingest.providers.stac import LocalArchiveProvider

        assert source.path is not None  # validated by SourceSpec
        return LocalArchiveProvider(source.path)
    if source.provider == "sentinelsat":
        from eo_tasks.ingest.providers.sentinelsat_hub import SentinelsatProvider

        assert source.url is not None
        return SentinelsatProvider(source.url, credentials)
    from eo_tasks.ingest.providers.stac import StacApiProvider

    return StacApiProvider(source.provider, url=source.url, credentials=credentials)
