"""Scene providers against the local hub replay server.

sentinelsat, pystac-client and requests really talk HTTP to tests/fixtures/hub_replay.py, which
answers in the hubs' recorded wire formats (DHuS OpenSearch/OData, Earth Search, Planetary
Computer, CDSE). Nothing here patches the client libraries.
"""

from __future__ import annotations

import datetime as dt
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from eo_tasks.core.aoi_sections import SourceSpec
from eo_tasks.core.errors import DownloadError, ProviderError
from eo_tasks.core.scenes import LANDSAT_BANDS, S2_BANDS, SceneRecord, boa_offset_to_remove, platform_band
from eo_tasks.ingest.download import fetch
from eo_tasks.ingest.providers import Credentials, SceneProvider, SearchQuery, make_provider
from eo_tasks.ingest.providers.sentinelsat_hub import SentinelsatProvider
from eo_tasks.ingest.providers.stac import StacApiProvider
from tests.fixtures.hub_replay import HubReplay

BBOX = (11.8, 46.2, 12.2, 46.5)  # inside T32TPS, outside T32TNS
UTC = dt.UTC


@pytest.fixture
def hub() -> Iterator[HubReplay]:
    with HubReplay(page_size=3) as server:
        yield server


def _query(start: str, end: str, *collections: str) -> SearchQuery:
    return SearchQuery(
        bbox=BBOX,
        start=dt.datetime.fromisoformat(start).replace(tzinfo=UTC),
        end=dt.datetime.fromisoformat(end).replace(tzinfo=UTC),
        collections=collections or ("sentinel-2-l2a",),
    )


def _provider(
    provider: str, url: str, credentials: Credentials | None = None, **source: Any
) -> SceneProvider:
    spec = SourceSpec.from_dict({"provider": provider, "url": url, **source}, "sources[0]")
    return make_provider(spec, credentials)


def _fetch_all(provider: SceneProvider, scene: SceneRecord, dest: Path) -> dict[str, Path]:
    session = provider.session()
    assets = provider.download_assets(scene.provider_id, scene.assets)
    return {
        a.band: fetch(
            a.href,
            dest / a.band,
            checksum=a.checksum,
            size=a.size,
            session=session,
            timeout=5.0,
            sleep=lambda s: None,
        )
        for a in assets
    }


def _path(hub: HubReplay, href: str) -> str:
    assert href.startswith(hub.base_url), href
    return href[len(hub.base_url) :].split("?")[0]


# ====================================================================== sentinelsat (DHuS)


def _dhus(hub: HubReplay, password: str = HubReplay.DHUS_PASSWORD) -> SceneProvider:
    return _provider(
        "sentinelsat",
        hub.dhus_url,
        Credentials(HubReplay.DHUS_USER, password),
        collections=["sentinel-2-l2a"],
    )


def _entry_fields(entry: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {"title": entry["title"], "uuid": entry["id"]}
    for kind in ("date", "double", "str"):
        values = entry[kind] if isinstance(entry[kind], list) else [entry[kind]]
        fields.update({v["name"]: v["content"] for v in values})
    return fields


def _expected_dhus(hub: HubReplay, start: str, end: str) -> list[dict[str, Any]]:
    """The recorded products of tile 32TPS (the only one intersecting BBOX) sensed in [start, end)."""
    low, high = (dt.datetime.fromisoformat(d).replace(tzinfo=UTC) for d in (start, end))
    out = []
    for entry in hub.dhus_products():
        fields = _entry_fields(entry)
        when = dt.datetime.fromisoformat(fields["beginposition"].replace("Z", "+00:00"))
        if fields["tileid"] == "32TPS" and low <= when < high:
            out.append(fields)
    return out


def test_sentinelsat_search_returns_scene_records(hub: HubReplay) -> None:
    scenes = list(_dhus(hub).search(_query("2021-06-01", "2021-07-01")))
    expected = _expected_dhus(hub, "2021-06-01", "2021-07-01")
    assert len(expected) == 2
    assert [s.id for s in scenes] == [e["title"] for e in expected]
    for scene, fields in zip(scenes, expected, strict=True):
        assert scene.provider == "sentinelsat"
        assert scene.provider_id == fields["uuid"]
        assert scene.collection == "sentinel-2-l2a"
        assert scene.platform == fields["platformserialidentifier"].lower()
        assert scene.cloud_cover == pytest.approx(float(fields["cloudcoverpercentage"]))
        assert scene.footprint_wkt == fields["footprint"]
        assert scene.datetime.tzinfo is not None
        assert scene.datetime == dt.datetime.fromisoformat(fields["beginposition"].replace("Z", "+00:00"))
        assert scene.properties["s2:processing_baseline"] == fields["processingbaseline"]
        (asset,) = scene.assets
        assert asset.href == hub.url(f"/dhus/odata/v1/Products('{fields['uuid']}')/$value")
    (request,) = hub.requests_to("/dhus/search")
    q = request.query["q"][0]
    assert 'producttype:"S2MSI2A"' in q and "Intersects(POLYGON((11.8 46.2," in q


def test_sentinelsat_search_reads_every_page(hub: HubReplay) -> None:
    provider = _dhus(hub)
    assert isinstance(provider, SentinelsatProvider)
    provider.api.page_size = 2  # the hub pages by rows/start; 5 matches -> pages of 2, 2 and 1
    scenes = list(provider.search(_query("2021-01-01", "2024-01-01")))
    expected = _expected_dhus(hub, "2021-01-01", "2024-01-01")
    assert len(expected) == 5
    assert [s.id for s in scenes] == [e["title"] for e in expected]
    assert [s.properties["s2:processing_baseline"] for s in scenes] == [
        "03.00",
        "03.00",
        "04.00",
        "05.09",
        "05.09",
    ]
    pages = hub.requests_to("/dhus/search")
    assert [(r.query["start"], r.query["rows"]) for r in pages] == [
        (["0"], ["2"]),
        (["2"], ["2"]),
        (["4"], ["2"]),
    ]


def test_sentinelsat_search_with_a_single_result(hub: HubReplay) -> None:
    # DHuS sends a lone entry as an object, not a one-element list.
    raw = requests.get(
        hub.url("/dhus/search"),
        params={
            "format": "json",
            "rows": 100,
            "start": 0,
            "q": 'beginPosition:["2022-06-01T00:00:00Z" TO "2022-07-01T00:00:00Z"]',
        },
        auth=(HubReplay.DHUS_USER, HubReplay.DHUS_PASSWORD),
        timeout=5,
    ).json()
    assert isinstance(raw["feed"]["entry"], dict)
    (scene,) = _dhus(hub).search(_query("2022-06-01", "2022-07-01"))
    (expected,) = _expected_dhus(hub, "2022-06-01", "2022-07-01")
    assert scene.id == expected["title"] and scene.provider_id == expected["uuid"]
    assert scene.properties["s2:processing_baseline"] == "04.00"


def test_sentinelsat_search_with_no_result(hub: HubReplay) -> None:
    assert list(_dhus(hub).search(_query("2019-01-01", "2019-02-01"))) == []
    assert list(_dhus(hub).search(_query("2021-01-01", "2022-01-01", "landsat-c2-l2"))) == []
    assert hub.count("/dhus/search") == 1  # no request for a collection DHuS does not serve


def test_sentinelsat_download_assets_and_fetch(hub: HubReplay, tmp_path: Path) -> None:
    provider = _dhus(hub)
    (scene,) = provider.search(_query("2022-06-01", "2022-07-01"))
    (asset,) = provider.download_assets(scene.provider_id, scene.assets)
    odata = requests.get(
        hub.url(f"/dhus/odata/v1/Products('{scene.provider_id}')"),
        params={"$format": "json"},
        auth=(HubReplay.DHUS_USER, HubReplay.DHUS_PASSWORD),
        timeout=5,
    ).json()["d"]
    assert asset.checksum == f"md5:{odata['Checksum']['Value']}"
    assert asset.size == int(odata["ContentLength"])
    assert asset.href == odata["__metadata"]["media_src"]
    path = fetch(
        asset.href,
        tmp_path / f"{scene.id}.zip",
        checksum=asset.checksum,
        size=asset.size,
        session=provider.session(),
        timeout=5.0,
        sleep=lambda s: None,
    )
    assert path.read_bytes() == hub.blob(_path(hub, asset.href))
    with zipfile.ZipFile(path) as zf:
        assert f"{scene.id}.SAFE/manifest.safe" in zf.namelist()
        assert zf.testzip() is None


def test_sentinelsat_download_retries_through_the_hub(hub: HubReplay, tmp_path: Path) -> None:
    provider = _dhus(hub)
    (scene,) = provider.search(_query("2022-06-01", "2022-07-01"))
    (asset,) = provider.download_assets(scene.provider_id, scene.assets)
    value = _path(hub, asset.href)
    hub.faults.add(value, "status", times=1, status=503)
    hub.faults.add(value, "corrupt", times=1)
    path = fetch(
        asset.href,
        tmp_path / "p.zip",
        checksum=asset.checksum,
        size=asset.size,
        session=provider.session(),
        timeout=5.0,
        sleep=lambda s: None,
    )
    assert path.read_bytes() == hub.blob(value)
    assert hub.count(value) == 3
    assert len(list((tmp_path / "quarantine").glob("*.reason.txt"))) == 1


def test_sentinelsat_offline_product_is_refused(hub: HubReplay) -> None:
    provider = _dhus(hub)
    scenes = list(provider.search(_query("2023-08-01", "2023-09-01")))
    (offline,) = scenes
    with pytest.raises(ProviderError, match="long-term archive"):
        provider.download_assets(offline.provider_id, offline.assets)


def test_sentinelsat_unknown_product_is_a_provider_error(hub: HubReplay) -> None:
    with pytest.raises(ProviderError, match="Invalid key"):
        _dhus(hub).download_assets("00000000-0000-0000-0000-000000000000", [])


def test_sentinelsat_wrong_password_is_a_clear_error(hub: HubReplay) -> None:
    provider = _dhus(hub, password="wrong")
    with pytest.raises(ProviderError, match="Invalid user name or password"):
        list(provider.search(_query("2021-06-01", "2021-07-01")))
    with pytest.raises(ProviderError, match="Invalid user name or password"):
        provider.download_assets(hub.dhus_products()[0]["id"], [])
    assert all(r.headers["Authorization"].startswith("Basic ") for r in hub.requests_to("/dhus/*"))


@pytest.mark.parametrize("status", [500, 503])
def test_sentinelsat_server_error_is_a_provider_error(hub: HubReplay, status: int) -> None:
    hub.faults.add("/dhus/search", "status", status=status)
    with pytest.raises(ProviderError, match=f"HTTP status {status}"):
        list(_dhus(hub).search(_query("2021-06-01", "2021-07-01")))


def test_sentinelsat_error_on_a_later_page_is_a_provider_error(hub: HubReplay) -> None:
    provider = _dhus(hub)
    assert isinstance(provider, SentinelsatProvider)
    provider.api.page_size = 2
    list(provider.search(_query("2021-01-01", "2024-01-01")))  # three pages, fine
    hub.faults.add("/dhus/search", "status", times=None, status=502)
    with pytest.raises(ProviderError):
        list(provider.search(_query("2021-01-01", "2024-01-01")))


def test_sentinelsat_stalled_hub_times_out(hub: HubReplay) -> None:
    provider = SentinelsatProvider(
        hub.dhus_url, Credentials(HubReplay.DHUS_USER, HubReplay.DHUS_PASSWORD), timeout=0.3
    )
    hub.faults.add("/dhus/search", "timeout", delay=3.0)
    with pytest.raises(ProviderError, match="timed out"):
        list(provider.search(_query("2021-06-01", "2021-07-01")))


# ====================================================================== Earth Search


def _earth_search(hub: HubReplay) -> SceneProvider:
    return _provider("earth-search", hub.url("/earth-search/v1"))


def test_earth_search_pages_and_maps_bands(hub: HubReplay) -> None:
    scenes = list(
        _earth_search(hub).search(_query("2021-06-01", "2021-07-01", "sentinel-2-l2a", "landsat-c2-l2"))
    )
    s2 = [s for s in scenes if s.collection == "sentinel-2-l2a"]
    recorded = {i["id"]: i for i in hub.stac_items("earth-search", "sentinel-2-l2a")}
    complete_june = [
        i
        for i, item in recorded.items()
        if item["properties"]["datetime"].startswith("2021-06") and "scl" in item["assets"]
    ]
    assert [s.id for s in s2] == complete_june
    assert len(complete_june) == 4  # of 5 June items: one lacks `scl` and is skipped
    for scene in s2:
        item = recorded[scene.id]
        assert {a.band for a in scene.assets} == set(S2_BANDS)
        for asset in scene.assets:
            key = next(k for k, a in item["assets"].items() if a["href"] == asset.href)
            assert platform_band("sentinel-2-l2a", key) == asset.band
            assert "-jp2" not in key and key not in ("visual", "thumbnail", "aot", "wvp", "coastal")
            assert asset.checksum == f"multihash:{item['assets'][key]['file:checksum']}"
            assert asset.size == item["assets"][key]["file:size"]
        props = item["properties"]
        assert scene.properties["s2:processing_baseline"] == props["s2:processing_baseline"]
        assert scene.properties["earthsearch:boa_offset_applied"] is props["earthsearch:boa_offset_applied"]
        assert scene.properties["s2:mgrs_tile"] == "32TPS" and scene.properties["proj:epsg"] == 32632
        assert scene.cloud_cover == props["eo:cloud_cover"]
        assert scene.platform == props["platform"]
        assert scene.datetime == dt.datetime.fromisoformat(props["datetime"].replace("Z", "+00:00"))
        assert scene.footprint_wkt.startswith("POLYGON ((11.579 46.9226")
    searches = hub.requests_to("/earth-search/v1/search", "POST")
    bodies = [json.loads(r.body) for r in searches]
    assert [b["collections"] for b in bodies] == [["sentinel-2-l2a"]] * 2 + [["landsat-c2-l2"]] * 2
    assert ["next" in b for b in bodies] == [False, True, False, True]
    assert bodies[0]["bbox"] == list(BBOX)
    assert bodies[0]["datetime"] == "2021-06-01T00:00:00Z/2021-06-30T23:59:59.999999Z"  # end excluded
    landsat = [s for s in scenes if s.collection == "landsat-c2-l2"]
    assert len(landsat) == 4
    assert all({a.band for a in s.assets} == set(LANDSAT_BANDS) for s in landsat)
    assert landsat[0].properties["landsat:wrs_path"] == "192"


def test_earth_search_keeps_the_boa_offset_flag(hub: HubReplay) -> None:
    (scene,) = _earth_search(hub).search(_query("2022-06-01", "2022-07-01"))
    assert scene.properties["s2:processing_baseline"] == "04.00"
    assert scene.properties["earthsearch:boa_offset_applied"] is True
    assert boa_offset_to_remove(scene.properties) == 0  # never applied twice


def test_earth_search_fetch_verifies_the_multihash(hub: HubReplay, tmp_path: Path) -> None:
    provider = _earth_search(hub)
    scene = next(iter(provider.search(_query("2021-06-01", "2021-07-01"))))
    red = _path(hub, scene.asset("red").href)
    hub.faults.add(red, "corrupt", times=1)
    paths = _fetch_all(provider, scene, tmp_path)
    assert set(paths) == set(S2_BANDS)
    for asset in scene.assets:
        assert paths[asset.band].read_bytes() == hub.blob(_path(hub, asset.href))
    assert hub.count(red) == 2  # the corrupted copy was caught by the multihash and fetched again
    (reason,) = (tmp_path / "quarantine").glob("*.reason.txt")
    assert "sha256" in reason.read_text()


def test_earth_search_landsat_s3_assets_are_refused(hub: HubReplay) -> None:
    provider = _earth_search(hub)
    scenes = list(provider.search(_query("2021-06-01", "2021-07-01", "landsat-c2-l2")))
    assert scenes and all(a.href.startswith("s3://usgs-landsat/") for s in scenes for a in s.assets)
    with pytest.raises(ProviderError, match="requester-pays S3"):
        provider.download_assets(scenes[0].provider_id, scenes[0].assets)


def test_replayed_stac_search_also_pages_with_get(hub: HubReplay) -> None:
    from pystac_client import Client

    client = Client.open(hub.url("/earth-search/v1"))
    search = client.search(
        collections=["landsat-c2-l2"], bbox=BBOX, datetime="2021-06-01/2021-06-30", limit=100, method="GET"
    )
    ids = [item["id"] for page in search.pages_as_dicts() for item in page["features"]]
    assert ids == [i["id"] for i in hub.stac_items("earth-search", "landsat-c2-l2")]
    requests_ = hub.requests_to("/earth-search/v1/search", "GET")
    assert ["next" in r.query for r in requests_] == [False, True]
    assert requests_[1].query["collections"] == ["landsat-c2-l2"]


def test_stac_search_server_error_is_a_provider_error(hub: HubReplay) -> None:
    hub.faults.add("/earth-search/v1/search", "status", status=502)
    with pytest.raises(ProviderError, match="earth-search search"):
        list(_earth_search(hub).search(_query("2021-06-01", "2021-07-01")))


def test_stac_stalled_search_times_out(hub: HubReplay) -> None:
    provider = StacApiProvider("earth-search", url=hub.url("/earth-search/v1"), timeout=0.3)
    hub.faults.add("/earth-search/v1/search", "timeout", delay=3.0)
    with pytest.raises(ProviderError, match="timed out"):
        list(provider.search(_query("2021-06-01", "2021-07-01")))


# ====================================================================== Planetary Computer


# The PC recording is real: 33 sentinel-2-l2a items PC returned for 2019-01-01 00:00:01-00:00:10
# (tests/fixtures/recorded/real/pc_s2l2a_search_20190101.json), served 3 per page by the replay.
PC_QUERY = SearchQuery(
    bbox=(-180.0, -90.0, 180.0, 90.0),
    start=dt.datetime(2019, 1, 1, tzinfo=UTC),
    end=dt.datetime(2019, 1, 2, tzinfo=UTC),
    collections=("sentinel-2-l2a",),
)


def _pc(hub: HubReplay) -> SceneProvider:
    return _provider("planetary-computer", hub.url("/pc/api/stac/v1"))


def test_planetary_computer_band_ids_map_to_platform_bands(hub: HubReplay) -> None:
    scenes = list(_pc(hub).search(PC_QUERY))
    recorded = hub.stac_items("pc", "sentinel-2-l2a")
    assert len(recorded) == 33 and hub.count("/pc/api/stac/v1/search") == 11  # every page read
    assert [s.id for s in scenes] == [i["id"] for i in recorded]
    for scene, item in zip(scenes, recorded, strict=True):
        assert {a.band for a in scene.assets} == set(S2_BANDS)
        for key, band in {
            "B02": "blue",
            "B05": "rededge1",
            "B08": "nir",
            "B8A": "nir08",
            "B12": "swir22",
            "SCL": "scl",
        }.items():
            assert scene.asset(band).href == item["assets"][key]["href"]
        assert all(a.checksum is None for a in scene.assets)  # PC publishes none
        assert scene.properties["s2:processing_baseline"] == item["properties"]["s2:processing_baseline"]
        assert scene.platform == "sentinel-2" + item["id"][2].lower()


def test_planetary_computer_signs_hrefs_with_one_cached_sas_token(hub: HubReplay, tmp_path: Path) -> None:
    provider = _pc(hub)
    first, second, *_ = provider.search(PC_QUERY)
    signed = provider.download_assets(first.provider_id, first.assets)
    signed += provider.download_assets(second.provider_id, second.assets)
    assert hub.count("/pc/api/sas/v1/token/*") == 1
    (sas,) = hub.requests_to("/pc/api/sas/v1/token/*")
    for plain, asset in zip([*first.assets, *second.assets], signed, strict=True):
        assert asset.href.startswith(plain.href + "?") and "&sig=" in asset.href and "se=" in asset.href
    band_path = _path(hub, first.asset("blue").href)
    with pytest.raises(DownloadError, match="HTTP 403"):
        fetch(first.asset("blue").href, tmp_path / "unsigned.tif", timeout=5.0, sleep=lambda s: None)
    assert hub.count(band_path) == 1  # refused, not retried
    paths = _fetch_all(provider, first, tmp_path / "signed")
    assert paths["blue"].read_bytes() == hub.blob(band_path)
    assert hub.count("/pc/api/sas/v1/token/*") == 1
    assert sas.path.count("/") == 7  # /pc/api/sas/v1/token/<account>/<container>


def test_planetary_computer_token_close_to_expiry_is_renewed(tmp_path: Path) -> None:
    with HubReplay(sas_lifetime=30) as hub:  # less than the provider's 60 s safety margin
        provider = _pc(hub)
        scene, *_ = provider.search(PC_QUERY)
        provider.download_assets(scene.provider_id, scene.assets)
        # a token that expires within the margin is useless for a download: every href gets a fresh one
        assert hub.count("/pc/api/sas/v1/token/*") == len(scene.assets)


def test_planetary_computer_sas_endpoint_failure_is_a_provider_error(hub: HubReplay) -> None:
    provider = _pc(hub)
    scene = next(iter(provider.search(PC_QUERY)))
    hub.faults.add("/pc/api/sas/v1/token/*", "status", status=503)
    with pytest.raises(ProviderError, match="SAS token"):
        provider.download_assets(scene.provider_id, scene.assets)


# ====================================================================== CDSE


def _cdse(hub: HubReplay, password: str | None = HubReplay.CDSE_PASSWORD) -> SceneProvider:
    credentials = Credentials(HubReplay.CDSE_USER, password, extra={"token_url": hub.url("/cdse/token")})
    return _provider("cdse", hub.url("/cdse/stac/v1"), credentials)


def test_cdse_chooses_the_finest_resolution_and_the_https_alternate(hub: HubReplay) -> None:
    scenes = list(_cdse(hub).search(_query("2021-06-01", "2021-07-01")))
    recorded = hub.stac_items("cdse", "sentinel-2-l2a")
    assert [s.id for s in scenes] == [i["id"] for i in recorded]
    for scene, item in zip(scenes, recorded, strict=True):
        assert {a.band for a in scene.assets} == set(S2_BANDS)
        for key, band in {
            "B02_10m": "blue",
            "B04_10m": "red",
            "B08_10m": "nir",
            "B05_20m": "rededge1",
            "B8A_20m": "nir08",
            "B11_20m": "swir16",
            "SCL_20m": "scl",
        }.items():
            asset = scene.asset(band)
            assert asset.href == item["assets"][key]["alternate"]["https"]["href"]
            assert asset.href.startswith(hub.url("/cdse/download/"))
            assert asset.checksum == f"multihash:{item['assets'][key]['file:checksum']}"
            assert asset.size == item["assets"][key]["file:size"]
        assert scene.properties["processing:version"] == "03.00"
        assert scene.properties["proj:code"] == "EPSG:32632"


def test_cdse_session_carries_the_bearer_token_and_downloads(hub: HubReplay, tmp_path: Path) -> None:
    provider = _cdse(hub)
    scene = next(iter(provider.search(_query("2021-06-01", "2021-07-01"))))
    session = provider.session()
    (token_request,) = hub.requests_to("/cdse/token", "POST")
    form = dict(p.split("=", 1) for p in token_request.body.decode().split("&"))
    assert form["grant_type"] == "password" and form["client_id"] == "cdse-public"
    token = session.headers["Authorization"].removeprefix("Bearer ")
    assert token in hub.access_tokens
    blue = _path(hub, scene.asset("blue").href)
    with pytest.raises(DownloadError, match="HTTP 401"):
        fetch(scene.asset("blue").href, tmp_path / "anon.jp2", timeout=5.0, sleep=lambda s: None)
    paths = _fetch_all(provider, scene, tmp_path / "scene")
    assert set(paths) == set(S2_BANDS)
    for asset in scene.assets:
        assert paths[asset.band].read_bytes() == hub.blob(_path(hub, asset.href))
    assert all(r.headers.get("Authorization") == f"Bearer {token}" for r in hub.requests_to(blue)[1:])
    assert hub.count("/cdse/token") == 1  # cached across sessions


def test_cdse_bad_password_is_a_provider_error(hub: HubReplay) -> None:
    with pytest.raises(ProviderError, match="refused the credentials"):
        _cdse(hub, password="wrong").session()
    with pytest.raises(ProviderError, match="needs a login and password"):
        _cdse(hub, password=None).session()


def test_cdse_token_endpoint_failure_is_a_provider_error(hub: HubReplay) -> None:
    hub.faults.add("/cdse/token", "status", status=503)
    with pytest.raises(ProviderError, match="token"):
        _cdse(hub).session()
