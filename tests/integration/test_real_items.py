"""Real hub items, verbatim, through the providers' public ``search()`` over a loopback replay.

Every item under ``tests/fixtures/recorded/real/`` was copied from a public repository (see its
PROVENANCE.md); the replay server (tests/fixtures/hub_replay.py) serves them unchanged as STAC
APIs and a DHuS feed, and pystac-client / sentinelsat really talk HTTP to it. Each test checks one
hub's item field by field against values read from the item JSON itself: date, cloud cover, tile
or path/row, EPSG, processing baseline, the BOA offset preprocessing will remove, the bands, the
checksum algorithm.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from eo_tasks.core.aoi_sections import SourceSpec
from eo_tasks.core.scenes import (
    LANDSAT_BANDS,
    S2_BANDS,
    SceneRecord,
    boa_offset_to_remove,
    platform_refusal,
)
from eo_tasks.ingest.download import parse_checksum
from eo_tasks.ingest.providers import Credentials, SearchQuery, make_provider
from tests.fixtures.hub_replay import HubReplay

REAL = Path(__file__).parents[1] / "fixtures" / "recorded" / "real"


def _item(name: str) -> dict[str, Any]:
    return json.loads((REAL / name).read_text())


@pytest.fixture
def hub() -> Iterator[HubReplay]:
    with HubReplay(page_size=3) as server:
        yield server


def _search(
    hub: HubReplay, provider: str, root: str, remote: str, collection: str, item: dict
) -> SceneRecord:
    url = hub.serve_stac(provider, root, {remote: [item]})
    spec = SourceSpec.from_dict({"provider": provider, "url": url, "collections": [collection]}, "sources[0]")
    when = dt.datetime.fromisoformat(item["properties"]["datetime"].replace("Z", "+00:00"))
    w, s, e, n = item["bbox"]
    query = SearchQuery(
        bbox=(w, s, e, n),
        start=when - dt.timedelta(days=1),
        end=when + dt.timedelta(days=1),
        collections=[collection],
    )
    (scene,) = list(make_provider(spec).search(query))
    assert scene.id == item["id"] and scene.provider == provider
    assert scene.datetime == when
    return scene


# hub, replay root, the API's collection id, platform collection, file, expected fields
CASES = [
    ("cdse", "/real/cdse/v1", "sentinel-2-l2a", "sentinel-2-l2a", "cdse_s2l2a_item.json",
     {"tile": "13VEK", "epsg": 32613, "baseline": "05.10", "offset": 1000, "checksum": "sha3_256",
      "platform": "sentinel-2a"}),
    ("earth-search", "/real/es/v1", "sentinel-2-l2a", "sentinel-2-l2a", "earthsearch_s2l2a_item.json",
     {"tile": "13TDE", "epsg": 32613, "baseline": "05.09", "offset": 0, "checksum": None,
      "platform": "sentinel-2a"}),
    ("earth-search", "/real/es/v1", "landsat-c2-l2", "landsat-c2-l2", "earthsearch_landsat8_item.json",
     {"pathrow": ("033", "032"), "epsg": 32613, "checksum": None, "platform": "landsat-8"}),
    ("planetary-computer", "/real/pc/api/stac/v1", "sentinel-2-l2a", "sentinel-2-l2a", "pc_s2l2a_item.json",
     {"tile": "53NKG", "epsg": 32653, "baseline": "05.11", "offset": 1000, "checksum": None,
      "platform": "sentinel-2b"}),
    ("planetary-computer", "/real/pc/api/stac/v1", "sentinel-2-l2a", "sentinel-2-l2a",
     "pc_s2l2a_item_baseline0212.json",
     {"tile": "06VVN", "epsg": 32606, "baseline": "02.12", "offset": 0, "checksum": None,
      "platform": "sentinel-2b"}),
    ("planetary-computer", "/real/pc/api/stac/v1", "landsat-c2-l2", "landsat-c2-l2", "pc_landsat_item.json",
     {"pathrow": ("090", "091"), "epsg": 32655, "checksum": None, "platform": "landsat-9"}),
    ("usgs", "/real/usgs/stac-server", "landsat-c2l2-sr", "landsat-c2-l2", "usgs_landsat8_item.json",
     {"pathrow": ("028", "030"), "epsg": 32615, "checksum": "sha512", "platform": "landsat-8"}),
    ("usgs", "/real/usgs/stac-server", "landsat-c2l2-sr", "landsat-c2-l2", "usgs_landsat7_item.json",
     {"pathrow": ("044", "033"), "epsg": 32610, "checksum": "sha512", "platform": "landsat-7",
      "refused": True}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("provider", "root", "remote", "collection", "name", "expected"), CASES, ids=[c[4] for c in CASES]
)
def test_real_item_comes_out_right(
    hub: HubReplay, provider: str, root: str, remote: str, collection: str, name: str, expected: dict
) -> None:
    item = _item(name)
    props = item["properties"]
    scene = _search(hub, provider, root, remote, collection, item)
    # cloud cover and platform (canonical spelling)
    assert scene.cloud_cover == pytest.approx(props["eo:cloud_cover"])
    assert scene.platform == expected["platform"]
    refusal = platform_refusal(scene.collection, scene.platform)
    assert (refusal is not None) == expected.get("refused", False), refusal
    # projection: on the item or (CDSE) on every band asset
    assert scene.properties["proj:epsg"] == expected["epsg"]
    # every band preprocessing needs, from the hub's own asset keys
    bands = S2_BANDS if collection == "sentinel-2-l2a" else LANDSAT_BANDS
    assert sorted(a.band for a in scene.assets) == sorted(bands)
    if collection == "sentinel-2-l2a":
        assert scene.properties["s2:mgrs_tile"] == expected["tile"]
        baseline = props.get("s2:processing_baseline") or props.get("processing:version")
        assert baseline == expected["baseline"]
        assert boa_offset_to_remove(scene.properties) == expected["offset"]
    else:
        path_row = (scene.properties["landsat:wrs_path"], scene.properties["landsat:wrs_row"])
        assert path_row == expected["pathrow"]
    # checksums: every band's published checksum is one we can verify, or there is none
    algorithms = {parse_checksum(a.checksum)[0] if a.checksum else None for a in scene.assets}
    assert algorithms == {expected["checksum"]}
    for asset in scene.assets:
        assert ("://" in asset.href and not asset.href.startswith("s3://")) or provider == "earth-search"


def test_real_dhus_search_returns_the_l2a_product(hub: HubReplay) -> None:
    cassette = yaml.safe_load((REAL / "dhus_search_cassette.yaml").read_text())
    feed = json.loads(cassette["interactions"][0]["response"]["body"]["string"])["feed"]
    hub.use_dhus_feed(feed)
    spec = SourceSpec.from_dict(
        {"provider": "sentinelsat", "url": hub.dhus_url, "collections": ["sentinel-2-l2a"]}, "sources[0]"
    )
    provider = make_provider(spec, Credentials(HubReplay.DHUS_USER, HubReplay.DHUS_PASSWORD))
    query = SearchQuery(
        bbox=(-66.2695, -8.0592, -57.3047, 0.7031),
        start=dt.datetime(2018, 12, 12, tzinfo=dt.UTC),
        end=dt.datetime(2018, 12, 28, tzinfo=dt.UTC),
        collections=["sentinel-2-l2a"],
    )
    scenes = list(provider.search(query))
    # the feed holds 1 S2MSI2A and 4 S2MSI1C products: only the L2A one is asked for and returned
    assert [s.id for s in scenes] == ["S2A_MSIL2A_20181217T142741_N0211_R053_T20MRV_20181217T164546"]
    (scene,) = scenes
    assert scene.datetime == dt.datetime(2018, 12, 17, 14, 27, 41, 24000, tzinfo=dt.UTC)
    assert scene.cloud_cover == 0.0 and scene.platform == "sentinel-2a"
    assert scene.properties["s2:processing_baseline"] == "02.11"
    assert boa_offset_to_remove(scene.properties) == 0
    assert [a.band for a in scene.assets] == ["product"] and scene.properties["format"] == "SAFE"


def _cassette_items(name: str, collection: str) -> list[dict[str, Any]]:
    """The items of ``collection`` in every recorded search response of a cassette, in order."""
    items = []
    for interaction in yaml.safe_load((REAL / name).read_text())["interactions"]:
        body = json.loads(interaction["response"]["body"]["string"])
        items += [f for f in body.get("features", []) if f.get("collection") == collection]
    return items


def test_real_earth_search_items_page_through_search(hub: HubReplay) -> None:
    # 7 real Earth Search v1 sentinel-2-l2a items from two recorded searches (two real pages of
    # one, see PROVENANCE.md), served verbatim 3 per page: all arrive, each field from its own JSON
    real = _cassette_items("earthsearch_filter_search_cassette.yaml", "sentinel-2-l2a")
    real += _cassette_items("earthsearch_search_cassette.yaml", "sentinel-2-l2a")
    assert len(real) == 7 and len({i["id"] for i in real}) == 7
    url = hub.serve_stac("earth-search", "/real/es-paged/v1", {"sentinel-2-l2a": real}, token="next")
    spec = SourceSpec.from_dict(
        {"provider": "earth-search", "url": url, "collections": ["sentinel-2-l2a"]}, "sources[0]"
    )
    query = SearchQuery(
        bbox=(-180.0, -90.0, 180.0, 90.0),
        start=dt.datetime(2023, 1, 1, tzinfo=dt.UTC),
        end=dt.datetime(2025, 12, 31, tzinfo=dt.UTC),
        collections=["sentinel-2-l2a"],
    )
    scenes = {s.id: s for s in make_provider(spec).search(query)}
    assert sorted(scenes) == sorted(i["id"] for i in real)
    assert hub.count("/real/es-paged/v1/search") == 3  # 7 items, 3 per page
    for item in real:
        props, scene = item["properties"], scenes[item["id"]]
        assert scene.properties["s2:mgrs_tile"] == props["grid:code"].removeprefix("MGRS-")
        assert scene.properties["proj:epsg"] == props["proj:epsg"]
        assert scene.cloud_cover == pytest.approx(props["eo:cloud_cover"])
        assert sorted(a.band for a in scene.assets) == sorted(S2_BANDS)
        assert all(a.checksum is None for a in scene.assets)  # Earth Search publishes none
        applied = props.get("earthsearch:boa_offset_applied", False)
        expected = 0 if applied or props["s2:processing_baseline"] < "04.00" else 1000
        assert boa_offset_to_remove(scene.properties) == expected
