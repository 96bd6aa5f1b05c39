"""A DHuS (sentinelsat) product from search to cube, over the loopback replay and the real PostGIS.

The hub's answers are real: the OpenSearch entry and the OData product entry of
S2A_MSIL2A_20201007T022601_N0214_R046_T49MFN_20201007T064142, recorded by sentinelsat's own test
suite (tests/fixtures/recorded/real/dhus_odata_product_cassette.yaml, see PROVENANCE.md). The
product was in the long-term archive when it was recorded (``"Online": false``): the first
download is refused with that reason and the scene stays fetchable. The hub then restores it:
``Online`` becomes true and, because the real 234 MB product's bytes are not public test data, the
served ``$value`` is a small SAFE zip in the real layout (tests/fixtures/safe_product.py) whose MD5
and length replace the recorded ``Checksum``/``ContentLength``; every other field stays as recorded.
The scene then becomes ``ready`` in the catalog, and preprocessing reads its bands from the SAFE
into a cube equal (within 1e-4) to the cube of the same numbers given as COG files.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import yaml

from eo_tasks.core.aoi_sections import SourceSpec
from eo_tasks.core.calendar import Calendar
from eo_tasks.core.errors import ProviderError
from eo_tasks.core.grid import GridSpec
from eo_tasks.core.scenes import scoped_id
from eo_tasks.ingest.pipeline import download_scene
from eo_tasks.ingest.providers import Credentials, SearchQuery, make_provider
from eo_tasks.preprocess.datacube import CubeSpec, build_cube
from eo_tasks.store.scenes import SceneCatalog
from tests.fixtures.hub_replay import HubReplay
from tests.fixtures.safe_product import cog_scene, safe_zip, sample_dns

CASSETTE = Path(__file__).parents[1] / "fixtures" / "recorded" / "real" / "dhus_odata_product_cassette.yaml"
REAL_HUB = "https://apihub.copernicus.eu/apihub/"
TITLE = "S2A_MSIL2A_20201007T022601_N0214_R046_T49MFN_20201007T064142"
AOI = "dhus-e2e"
# T49MFN is in UTM 49S; a 640 m square of it
GRID = GridSpec(epsg=32749, bounds=(600000.0, 9199360.0, 600640.0, 9200000.0))
PLACE = {"epsg": 32749, "origin": (600000, 9200000)}


def _recorded() -> tuple[dict[str, Any], dict[str, Any]]:
    """The recorded OpenSearch feed (search by uuid) and OData product entry."""
    interactions = yaml.safe_load(CASSETTE.read_text())["interactions"]
    bodies = {
        i["request"]["uri"].split("?")[0].rsplit("/", 1)[-1]: i["response"]["body"].get("string")
        for i in interactions
        if i["response"]["body"].get("string")
    }
    feed = json.loads(bodies["search"])["feed"]
    odata = json.loads(next(v for k, v in bodies.items() if k.startswith("Products(")))
    return feed, odata


@pytest.fixture(scope="module")
def jp2_driver() -> None:
    from osgeo import gdal

    if gdal.GetDriverByName("JP2OpenJPEG") is None:
        pytest.skip("GDAL has no JP2OpenJPEG driver")


@pytest.fixture
def hub() -> Iterator[HubReplay]:
    with HubReplay() as server:
        yield server


def test_dhus_product_is_searched_downloaded_catalogued_and_read_into_a_cube(
    jp2_driver: None, hub: HubReplay, conn: Any, tmp_path: Path
) -> None:
    feed, odata = _recorded()
    assert odata["d"]["Name"] == TITLE and odata["d"]["Online"] is False  # as recorded
    dns = sample_dns(7)
    product = safe_zip(tmp_path / "hub", dns, title=TITLE, **PLACE).read_bytes()
    hub.use_dhus_feed(feed)
    uuid = hub.serve_dhus_product(odata, product, REAL_HUB)

    spec = SourceSpec.from_dict(
        {"provider": "sentinelsat", "url": hub.dhus_url, "collections": ["sentinel-2-l2a"]}, "sources[0]"
    )
    provider = make_provider(spec, Credentials(HubReplay.DHUS_USER, HubReplay.DHUS_PASSWORD))
    query = SearchQuery(
        bbox=(112.6, -7.3, 112.9, -7.0),
        start=dt.datetime(2020, 10, 6, tzinfo=dt.UTC),
        end=dt.datetime(2020, 10, 8, tzinfo=dt.UTC),
        collections=["sentinel-2-l2a"],
    )
    (found,) = list(provider.search(query))
    assert (found.id, found.provider_id, found.platform) == (TITLE, uuid, "sentinel-2a")
    assert found.properties == {"s2:processing_baseline": "02.14", "format": "SAFE"}
    assert found.cloud_cover == pytest.approx(14.46506)
    scene = dataclasses.replace(found, id=scoped_id(provider.name, found.id))
    catalog = SceneCatalog(conn)
    catalog.upsert_discovered(AOI, [scene])
    data = tmp_path / "data"

    # as recorded, the product is in the long-term archive: refused with the reason, fetched later
    with pytest.raises(ProviderError, match="long-term archive"):
        download_scene(scene.id, catalog, provider, data)
    assert catalog.get(scene.id).state == "failed"
    assert catalog.to_download(AOI, max_attempts=3) == [scene.id]

    # the hub restores it; the served bytes are the small SAFE: their MD5 and size replace the recorded
    restored = copy.deepcopy(odata)
    restored["d"].update(Online=True, ContentLength=str(len(product)))
    restored["d"]["Checksum"]["Value"] = hashlib.md5(product).hexdigest().upper()
    hub.serve_dhus_product(restored, product, REAL_HUB)
    result = download_scene(scene.id, catalog, provider, data)
    assert result.state == "ready" and result.bytes == len(product)
    assert catalog.get(scene.id).state == "ready"
    assert hub.count(f"/dhus/odata/v1/Products('{uuid}')/$value", "GET") == 1

    # preprocessing reads the catalogued SAFE's bands into a cube, like the same numbers as COGs
    (ready,) = catalog.ready_scenes(AOI, 2020)
    assert ready.id == scene.id and Path(ready.files["product"]).read_bytes() == product
    cube_spec = CubeSpec(aoi=AOI, grid=GRID, year=2020, calendar=Calendar(6), block_size=32)
    twin = cog_scene(tmp_path / "cog", "twin", ready.datetime, dns, baseline="02.14", **PLACE)
    from_safe = build_cube([ready], cube_spec, tmp_path / "safe.h5")
    from_cogs = build_cube([twin], cube_spec, tmp_path / "cog.h5")
    assert from_safe.scenes_used == from_cogs.scenes_used == 1 and from_safe.scenes_skipped == {}
    with h5py.File(tmp_path / "safe.h5") as s, h5py.File(tmp_path / "cog.h5") as c:
        scale = float(c["reflectance"].attrs["scale_factor"])
        window = int(np.flatnonzero(c["valid"][:].any(axis=(1, 2)))[0])  # the composite of 7 October
        diff = np.abs(s["reflectance"][:].astype(np.float64) - c["reflectance"][:]) * scale
        assert diff.max() <= 1e-4
        assert (s["valid"][:] == c["valid"][:]).all() and s["valid"][window].all()
        # baseline 02.14 has no BOA offset: reflectance is DN / 10000 (blue is band 0 of the cube)
        blue = s["reflectance"][window, :, :, 0].astype(np.float64) * scale
        np.testing.assert_allclose(blue, dns["blue"] / 10000.0, atol=1e-4)
