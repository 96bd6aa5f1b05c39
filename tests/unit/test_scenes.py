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
        ({"processing:version": "05.10"}, 1000),  # CDSE names the baseline so
        ({"processing:version": "03.00"}, 0),
        ({"processing:version": "05.10", "raster:offset_dn": 1000}, 1000),  # -0.1 / 0.0001, once
        # Earth Search publishes raster offset -0.1 on items whose COGs it already corrected
        (
            {
                "s2:processing_baseline": "05.09",
                "earthsearch:boa_offset_applied": True,
                "raster:offset_dn": 1000,
            },
            0,
        ),
        ({"s2:processing_baseline": "05.09", "s2:boa_add_offset": -1000.0}, 1000),  # SAFE MTD_MSIL2A.xml
        ({"s2:processing_baseline": "05.09", "raster:offset_dn": 0}, 0),  # a catalog that says "none left"
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


@pytest.mark.parametrize(
    ("name", "canonical", "refused"),
    [
        ("LANDSAT_8", "landsat-8", False),
        ("landsat_8", "landsat-8", False),
        ("landsat-9", "landsat-9", False),
        ("LANDSAT_7", "landsat-7", True),
        ("landsat-5", "landsat-5", True),
        ("landsat-4", "landsat-4", True),
    ],
)
def test_platform_policy(name: str, canonical: str, refused: bool) -> None:
    from eo_tasks.core.scenes import canonical_platform, platform_refusal

    assert canonical_platform(name) == canonical
    reason = platform_refusal("landsat-c2-l2", canonical)
    assert (reason is not None) == refused
    if refused:
        assert canonical in reason and "landsat-8 and landsat-9" in reason


@pytest.mark.parametrize(
    "bad", ["../../x", "..", "a/b", "/etc/passwd", "x\\y", "", "a\x00b", ".hidden", "a" * 300]
)
def test_hostile_item_ids_are_refused(bad: str) -> None:
    from eo_tasks.core.errors import ProviderError
    from eo_tasks.core.scenes import checked_item_id, scoped_id

    with pytest.raises(ProviderError, match="refused item id"):
        checked_item_id(bad)
    with pytest.raises(ProviderError):
        scoped_id("earth-search", bad)


def test_scoped_ids_keep_sources_apart() -> None:
    from eo_tasks.core.scenes import scoped_id

    assert scoped_id("earth-search", "S2A_13TDE_20231008_0_L2A") == "earth-search/S2A_13TDE_20231008_0_L2A"
    assert scoped_id("local", "X") != scoped_id("planetary-computer", "X")


def test_mgrs_and_epsg_from_every_hub_spelling() -> None:
    from eo_tasks.core.scenes import epsg_code, mgrs_tile

    assert mgrs_tile({"grid:code": "MGRS-13VEK"}) == "13VEK"
    assert mgrs_tile({"mgrs:utm_zone": 6, "mgrs:latitude_band": "V", "mgrs:grid_square": "VN"}) == "06VVN"
    assert mgrs_tile({"s2:mgrs_tile": "32TPS", "grid:code": "MGRS-1AAA"}) == "32TPS"
    assert epsg_code("EPSG:32613") == 32613 and epsg_code(32633) == 32633 and epsg_code(None) is None
