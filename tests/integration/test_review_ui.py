"""The review UI's HTTP API against the real PostGIS store (a private schema) and Airflow's auth manager.

The app is the plugin's own ``create_app`` with its connection pointed at the test schema; tokens
come from Airflow's SimpleAuthManager as in the api-server, so the login checks are real too.
"""

from __future__ import annotations

import json
import math
import sys
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import psycopg2
import pytest
from fastapi.testclient import TestClient
from osgeo import gdal, osr

from eo_tasks.store.connection import migrate
from tests.browser.seed import BARE, TREE, WATER, delete_aoi, seed_aoi

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "plugins"))
from eo_review.app import create_app  # noqa: E402
from eo_review.auth import CSRF_COOKIE, CSRF_HEADER  # noqa: E402

AOI = "review-ui-test"


@pytest.fixture
def store(pg_schema: dict[str, Any], tmp_path: Path) -> Iterator[tuple[Any, dict[str, Any]]]:
    args = {k: v for k, v in pg_schema.items() if k != "schema"}
    conn = psycopg2.connect(**args)
    migrate(conn)
    seeded = seed_aoi(conn, AOI, tmp_path)
    yield conn, {**seeded, "args": args}
    delete_aoi(conn, AOI)
    conn.close()


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Bearer tokens from SimpleAuthManager's own login, for users of different roles.

    ``anonymous`` is the all-admins user of the local stack; ``vera`` (viewer), ``uma`` (user) and
    ``ana`` (admin) log in with their passwords from a passwords file, as in a deployment with
    ``AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS``.
    """
    from airflow.api_fastapi.app import init_auth_manager
    from airflow.api_fastapi.auth.managers.simple.datamodels.login import LoginBody
    from airflow.api_fastapi.auth.managers.simple.services.login import SimpleAuthManagerLogin
    from fastapi import HTTPException

    passwords = {"vera": "viewer-pw-1", "uma": "user-pw-2", "ana": "admin-pw-3"}
    password_file = tmp_path_factory.mktemp("auth") / "passwords.json"
    password_file.write_text(json.dumps(passwords))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")
        init_auth_manager()
        found = {"anonymous": SimpleAuthManagerLogin.create_token(LoginBody(username="", password=""))}
        mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "False")
        mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "vera:viewer,uma:user,ana:admin")
        mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(password_file))
        init_auth_manager()
        for name, password in passwords.items():
            found[name] = SimpleAuthManagerLogin.create_token(LoginBody(username=name, password=password))
        with pytest.raises(HTTPException) as refused:  # the login is real: a wrong password is refused
            SimpleAuthManagerLogin.create_token(LoginBody(username="ana", password="guess"))
        assert refused.value.status_code == 401
    return found


def _client(app: Any, token: str) -> TestClient:
    """A client logged in with ``token`` that has loaded a page, so it holds the CSRF cookie."""
    client = TestClient(app, headers={"Authorization": f"Bearer {token}"})
    assert client.get("/").status_code == 200
    client.headers[CSRF_HEADER] = client.cookies[CSRF_COOKIE]
    return client


@pytest.fixture
def app(store: tuple[Any, dict[str, Any]], tmp_path: Path) -> Any:
    args = store[1]["args"]
    return create_app(connect=lambda: psycopg2.connect(**args), tile_root=tmp_path / "tiles")


@pytest.fixture
def client(app: Any, tokens: dict[str, str]) -> TestClient:
    return _client(app, tokens["anonymous"])


def _row(conn: Any, change_id: int) -> tuple[Any, ...]:
    with conn, conn.cursor() as cur:
        cur.execute(
            "SELECT status, reviewed_by, reviewed_at, new_class FROM lc_change WHERE id = %s", (change_id,)
        )
        return tuple(cur.fetchone())


def test_pages_list_the_aoi_and_load_the_libraries_locally(client: TestClient) -> None:
    index = client.get("/")
    assert index.status_code == 200 and f'href="/aoi/{AOI}"' in index.text
    page = client.get(f"/aoi/{AOI}")
    assert page.status_code == 200
    assert "/vendor/leaflet/leaflet.js" in page.text and "/vendor/chart.js/chart.umd.min.js" in page.text
    assert "http" not in page.text.split("<body>")[0]  # nothing from a CDN
    for path in ("/vendor/leaflet/leaflet.js", "/vendor/chart.js/chart.umd.min.js", "/static/review.js"):
        assert client.get(path).status_code == 200, f"{path}: run scripts/setup.sh orchestration (npm ci)"


def test_json_endpoints(client: TestClient, store: tuple[Any, dict[str, Any]]) -> None:
    aois = client.get("/api/aois").json()
    assert {"aoi": AOI, "years": [2021, 2022], "pending": 2, "approved": 0, "rejected": 0} in aois

    maps = client.get(f"/api/aois/{AOI}/maps").json()
    assert [m["year"] for m in maps] == [2021, 2022]
    (south, west), (north, east) = maps[0]["bounds"]
    assert 46.0 < south < north < 46.1 and 11.0 < west < east < 11.2  # Trento, not UTM metres
    assert "cog_path" not in maps[0]
    assert maps[1]["tiles"].startswith(f"/tiles/{AOI}/2022/{{z}}/{{x}}/{{y}}.png?v=")

    changes = client.get(f"/api/aois/{AOI}/changes").json()
    assert changes["type"] == "FeatureCollection" and len(changes["features"]) == 2
    first = changes["features"][0]
    assert first["geometry"]["type"] == "MultiPolygon"
    props = first["properties"]
    assert (props["change_date"], props["from_name"], props["to_name"], props["status"]) == (
        "2021-10-15",
        "tree_cover",
        "bare",
        "pending",
    )
    assert props["area_m2"] == pytest.approx(10000.0)
    assert client.get(f"/api/aois/{AOI}/changes?status=approved").json()["features"] == []
    assert client.get(f"/api/aois/{AOI}/changes?year=2021").json()["features"] == []
    assert len(client.get(f"/api/aois/{AOI}/changes?year=2022&status=pending").json()["features"]) == 2

    stats = client.get(f"/api/aois/{AOI}/stats").json()
    assert stats["areas"]["2022"]["bare"] == pytest.approx(2.0)  # 200 px of 100 m²
    assert stats["areas"]["2021"]["bare"] == 0
    assert stats["per_month"] == [
        {"month": "2021-10", "pending": 1, "approved": 0, "rejected": 0},
        {"month": "2022-06", "pending": 1, "approved": 0, "rejected": 0},
    ]


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def _srs(epsg: int) -> osr.SpatialReference:
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    return srs


def _tile_pixels(client: TestClient, url: str) -> np.ndarray:
    response = client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    name = f"/vsimem/test_tile_{uuid.uuid4().hex}.png"
    gdal.FileFromMemBuffer(name, response.content)
    try:
        ds = gdal.Open(name)
        assert (ds.RasterXSize, ds.RasterYSize) == (256, 256)
        assert ds.GetRasterBand(1).GetRasterColorTable() is not None
        return ds.GetRasterBand(1).ReadAsArray()
    finally:
        gdal.Unlink(name)


def test_tiles_show_the_10_m_pixels_and_are_cached_per_cog_version(
    client: TestClient, store: tuple[Any, dict[str, Any]], tmp_path: Path
) -> None:
    seeded = store[1]
    template = client.get(f"/api/aois/{AOI}/maps").json()[1]["tiles"]
    (south, west), (north, east) = client.get(f"/api/aois/{AOI}/maps").json()[1]["bounds"]
    lon, lat = (west + east) / 2, (south + north) / 2

    def url(z: int, x: int, y: int, template: str = template) -> str:
        return template.replace("{z}", str(z)).replace("{x}", str(x)).replace("{y}", str(y))

    overview = _tile_pixels(client, url(12, *_tile_of(lon, lat, 12)))  # the 640 m map is a few pixels
    assert 0 < np.count_nonzero(overview) < 256 * 256 / 50
    x, y = _tile_of(lon, lat, 18)
    close = _tile_pixels(client, url(18, x, y))  # 0.6 m Web Mercator pixels, inside the map
    assert np.count_nonzero(close) == close.size
    assert not _tile_pixels(client, url(18, x + 50, y)).any()  # outside the map: empty

    # Zoomed in, a 10 m pixel is a 10 m square: the 100 m wide bare block (columns 5-14 of the
    # 2022 map) spans 100 m / 1.66 m = 60 screen pixels at zoom 16 (2.39 m Mercator pixels at 46° N).
    to_wgs84 = osr.CoordinateTransformation(_srs(32632), _srs(4326))
    block_lat, block_lon, _ = to_wgs84.TransformPoint(664100.0, 5099900.0)  # the block's centre
    z, n = 16, 2**16
    fx = (block_lon + 180) / 360 * n
    fy = (1 - math.asinh(math.tan(math.radians(block_lat))) / math.pi) / 2 * n
    x0, y0 = int(fx) - 1, int(fy) - 1
    mosaic = np.block(
        [[_tile_pixels(client, url(z, x0 + i, y0 + j)) for i in range(3)] for j in range(3)]
    )  # 3 × 3 tiles around it
    row, col = round((fy - y0) * 256), round((fx - x0) * 256)
    assert mosaic[row, col] == BARE
    line = mosaic[row] == BARE
    left = col - np.flatnonzero(~line[:col])[-1] - 1
    right = np.flatnonzero(~line[col:])[0]
    assert 55 <= left + right <= 66, f"the 100 m block is {left + right} px wide at zoom 16, not ~60"
    print(f"zoom 16: the 100 m block is {left + right} px wide")

    cached = sorted((tmp_path / "tiles" / AOI / "2022").glob("*/18/*/*.png"))
    assert len(cached) == 1 and cached[0].read_bytes() == client.get(url(18, x, y)).content
    version = cached[0].parts[-4]
    # A review rewrites the 2022 COG: new tile URLs, new tiles, the old version removed.
    assert client.post(f"/api/changes/{seeded['late']}/review", json={"action": "reject"}).status_code == 200
    newer = client.get(f"/api/aois/{AOI}/maps").json()[1]["tiles"]
    assert newer != template
    _tile_pixels(client, url(18, x, y, newer))
    versions = {p.name for p in (tmp_path / "tiles" / AOI / "2022").iterdir()}
    assert len(versions) == 1 and version not in versions

    for bad in (url(21, 0, 0), url(3, 8, 0), url(3, -1, 0)):
        assert client.get(bad).status_code == 422, bad
    assert client.get(f"/tiles/{AOI}/1999/1/0/0.png").status_code == 404


def test_approve_records_the_review_and_rewrites_the_earlier_map(
    client: TestClient, store: tuple[Any, dict[str, Any]]
) -> None:
    conn, seeded = store
    response = client.post(f"/api/changes/{seeded['early']}/review", json={"action": "approve"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["maps_updated"] == [2021] and body["pixels_updated"] == 100
    assert body["change"]["status"] == "approved" and body["change"]["reviewed_by"] == "Anonymous"
    status, by, at, new_class = _row(conn, seeded["early"])
    assert (status, by, new_class) == ("approved", "Anonymous", None) and at is not None
    ds = gdal.Open(seeded["cogs"][2021])  # keep the dataset alive while its band is read (GDAL 3.6)
    classes = ds.GetRasterBand(1).ReadAsArray()
    assert (classes[5:15, 5:15] == BARE).all() and (classes[40:45, 40:60] == TREE).all()
    assert client.get(f"/api/aois/{AOI}/stats").json()["areas"]["2021"]["bare"] == pytest.approx(1.0)

    relabel = client.post(
        f"/api/changes/{seeded['late']}/review",
        json={"action": "relabel", "new_class": WATER},
    )
    assert relabel.status_code == 200, relabel.text
    assert _row(conn, seeded["late"])[0::3] == ("approved", WATER)
    reject = client.post(f"/api/changes/{seeded['early']}/review", json={"action": "reject"})
    assert reject.status_code == 200 and reject.json()["maps_updated"] == [2021, 2022]
    assert _row(conn, seeded["early"])[0] == "rejected"


def test_the_reviewer_is_the_logged_in_user_not_the_request(
    app: Any, store: tuple[Any, dict[str, Any]], tokens: dict[str, str]
) -> None:
    conn, seeded = store
    ana = _client(app, tokens["ana"])
    response = ana.post(
        f"/api/changes/{seeded['late']}/review", json={"action": "reject", "reviewer": "someone else"}
    )
    assert response.status_code == 200, response.text
    assert _row(conn, seeded["late"])[:2] == ("rejected", "ana")
    page = ana.get(f"/aoi/{AOI}")
    assert "reviewing as <b>ana</b>" in page.text and 'name="reviewer"' not in page.text


@pytest.mark.parametrize(
    "body", [{"action": "approve"}, {"action": "reject"}, {"action": "relabel", "new_class": WATER}]
)
def test_a_viewer_can_look_but_not_review(
    app: Any, store: tuple[Any, dict[str, Any]], tokens: dict[str, str], body: dict[str, Any]
) -> None:
    """Fault suite (issue 15): a Viewer trying to approve, reject or relabel gets 403; nothing changes."""
    conn, seeded = store
    before = Path(seeded["cogs"][2021]).read_bytes()
    vera = _client(app, tokens["vera"])
    assert vera.get(f"/api/aois/{AOI}/changes").status_code == 200
    page = vera.get(f"/aoi/{AOI}")
    assert (
        page.status_code == 200
        and 'data-can-review="no"' in page.text
        and "may look, not review" in page.text
    )
    response = vera.post(f"/api/changes/{seeded['early']}/review", json=body)
    assert response.status_code == 403, response.text
    assert f"maps_{AOI}" in response.json()["detail"]  # the message names the permission it lacks
    assert _row(conn, seeded["early"]) == ("pending", None, None, None)
    assert Path(seeded["cogs"][2021]).read_bytes() == before

    for who in ("uma", "ana"):  # a User (may edit DAGs) and an Admin may review
        assert 'data-can-review="yes"' in _client(app, tokens[who]).get(f"/aoi/{AOI}").text
    response = _client(app, tokens["uma"]).post(f"/api/changes/{seeded['early']}/review", json=body)
    assert response.status_code == 200, response.text
    assert _row(conn, seeded["early"])[1] == "uma"


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({CSRF_HEADER: ""}, "CSRF"),
        ({CSRF_HEADER: "x" * 43}, "CSRF"),
        ({"Origin": "http://evil.example"}, "cross-origin"),
    ],
)
def test_a_cross_site_request_is_refused(
    client: TestClient, store: tuple[Any, dict[str, Any]], headers: dict[str, str], why: str
) -> None:
    """With all-admins every request is an admin's: only the page's own token makes a review count."""
    conn, seeded = store
    response = client.post(
        f"/api/changes/{seeded['early']}/review", json={"action": "approve"}, headers=headers
    )
    assert response.status_code == 403 and why in response.json()["detail"]
    assert _row(conn, seeded["early"])[0] == "pending"
    same_origin = {"Origin": "http://testserver"}
    ok = client.post(
        f"/api/changes/{seeded['early']}/review", json={"action": "approve"}, headers=same_origin
    )
    assert ok.status_code == 200, ok.text


def test_concurrent_reviews_of_one_map_both_land(
    client: TestClient, store: tuple[Any, dict[str, Any]]
) -> None:
    """The api-server answers requests on a thread pool: two reviews rewriting the 2022 map at once."""
    seeded = store[1]
    barrier = threading.Barrier(2)

    def reject(change_id: int) -> int:
        barrier.wait()
        url = f"/api/changes/{change_id}/review"
        return client.post(url, json={"action": "reject"}).status_code

    with ThreadPoolExecutor(2) as pool:
        assert list(pool.map(reject, (seeded["early"], seeded["late"]))) == [200, 200]
    ds = gdal.Open(seeded["cogs"][2022])
    assert not (ds.GetRasterBand(1).ReadAsArray() == BARE).any()  # both regions back to tree cover
    assert client.get(f"/api/aois/{AOI}/stats").json()["areas"]["2022"]["bare"] == 0


@pytest.mark.parametrize(
    ("method", "path", "body", "code"),
    [
        ("post", "/api/changes/999999999/review", {"action": "approve"}, 404),
        ("post", "/api/changes/{early}/review", {"action": "delete"}, 422),
        ("post", "/api/changes/{early}/review", {"action": "relabel"}, 422),
        (
            "post",
            "/api/changes/{early}/review",
            {"action": "relabel", "new_class": 42},
            422,
        ),
        ("post", "/api/changes/{early}/review", {}, 422),
        ("post", "/api/changes/not-a-number/review", {"action": "approve"}, 422),
        ("get", f"/api/aois/{AOI}/changes?status=maybe", None, 422),
        ("get", f"/api/aois/{AOI}/changes?year=twenty", None, 422),
        ("get", "/api/aois/nowhere/changes", None, 404),
        ("get", "/aoi/nowhere", None, 404),
        ("get", f"/api/aois/{AOI}/maps/1999.png", None, 404),
    ],
)
def test_bad_input_gets_a_clear_error(
    client: TestClient, store: tuple[Any, dict[str, Any]], method: str, path: str, body: Any, code: int
) -> None:
    conn, seeded = store
    response = getattr(client, method)(path.format(early=seeded["early"]), **({"json": body} if body else {}))
    assert response.status_code == code, response.text
    assert "detail" in response.json() and "Traceback" not in response.text
    assert _row(conn, seeded["early"])[0] == "pending"


def test_no_or_a_forged_token_is_refused(client: TestClient, store: tuple[Any, dict[str, Any]]) -> None:
    conn, seeded = store
    for headers, code in (({"Authorization": ""}, 401), ({"Authorization": "Bearer not.a.jwt"}, 403)):
        response = client.post(
            f"/api/changes/{seeded['early']}/review", json={"action": "approve"}, headers=headers
        )
        assert response.status_code == code, response.text
        assert client.get("/api/aois", headers=headers).status_code == code
    assert _row(conn, seeded["early"])[0] == "pending"


def test_an_unreachable_store_is_a_503(tokens: dict[str, str]) -> None:
    app = create_app(connect=lambda: psycopg2.connect(host="127.0.0.1", port=1, connect_timeout=2))
    client = TestClient(app, headers={"Authorization": f"Bearer {tokens['anonymous']}"})
    response = client.get("/api/aois")
    assert response.status_code == 503 and "unreachable" in response.json()["detail"]
