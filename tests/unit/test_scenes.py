"""Band-name mapping across providers, the Sentinel-2 offset rule, and the ingest search window."""

from __future__ import annotations

import datetime as dt

import pytest

from eo_tasks.core.aoi import AOIConfig
from eo_tasks.core.scenes import boa_offset_to_remove, platform_band, resolution_of
from eo_tasks.ingest.pipeline import LOOKBACK, search_window


@pytest.mark.parametrize(
    ("collection", "key", "band"),
    [
        ("sentinel-2-l2a", "red", "red"),  # Earth Search v1
        ("sentinel-2-l2a", "B04", "red"),  # Planetary Computer
        ("sentinel-2-l2a", "B8A", "nir08"),
        ("sentinel-2-l2a", "B8A_20m", "nir08"),  # CDSE
        ("sentinel-2-l2a", "SCL_20m", "scl"),
        ("sentinel-2-l2a", "B01", None),  # coastal aerosol: not used
        ("sentinel-2-l2a", "visual", None),
        ("landsat-c2-l2", "nir08", "nir08"),
        ("landsat-c2-l2", "SR_B5", "nir08"),  # USGS band ids
        ("landsat-c2-l2", "QA_PIXEL", "qa_pixel"),
        ("landsat-c2-l2", "lwir11", None),
    ],
)
def test_platform_band(collection: str, key: str, band: str | None) -> None:
    assert platform_band(collection, key) == band


def test_resolution_suffix() -> None:
    assert resolution_of("B02_10m") == 10
    assert resolution_of("SCL_20m") == 20
    assert resolution_of("red") is None


@pytest.mark.parametrize(
    ("properties", "offset"),
    [
        ({"s2:processing_baseline": "02.14"}, 0),
        ({"s2:processing_baseline": "03.01"}, 0),
        ({"s2:processing_baseline": "04.00"}, 1000),
        ({"s2:processing_baseline": "05.09"}, 1000),
        ({"s2:processing_baseline": "05.09", "earthsearch:boa_offset_applied": True}, 0),  # already removed
        ({"s2:processing_baseline": "05.09", "earthsearch:boa_offset_applied": False}, 1000),
        ({}, 0),
    ],
)
def test_boa_offset_is_removed_once(properties: dict[str, object], offset: int) -> None:
    assert boa_offset_to_remove(properties) == offset


def _aoi(last_year: int | None = None) -> AOIConfig:
    return AOIConfig.from_dict(
        {
            "name": "a",
            "grid": {"epsg": 32632, "bounds": [0, 0, 100, 100]},
            "first_year": 2020,
            "last_year": last_year,
            "sources": [{"provider": "local", "path": "/x"}],
            "reference": {"path": "/r.tif", "legend": "corine"},
        }
    )


def test_first_search_covers_the_whole_history() -> None:
    until = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    assert search_window(_aoi(), None, until) == (dt.datetime(2020, 1, 1, tzinfo=dt.UTC), until)


def test_later_searches_start_a_lookback_before_the_newest_scene() -> None:
    latest = dt.datetime(2024, 2, 20, tzinfo=dt.UTC)
    until = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    assert search_window(_aoi(), latest, until) == (latest - LOOKBACK, until)


def test_search_stops_at_the_last_year() -> None:
    start, end = search_window(_aoi(last_year=2021), None, dt.datetime(2024, 3, 1, tzinfo=dt.UTC))
    assert end == dt.datetime(2022, 1, 1, tzinfo=dt.UTC)
    assert start < end
