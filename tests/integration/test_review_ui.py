"""The review UI's HTTP API against the real PostGIS store (a private schema) and Airflow's auth manager.

The app is the plugin's own ``create_app`` with its connection pointed at the test schema; tokens
come from Airflow's SimpleAuthManager as in the api-server, so the login checks are real too.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import psycopg2
import pytest
from fastapi.testclient import TestClient
from osgeo import gdal

from eo_tasks.store.connection import migrate
from tests.browser.seed import BARE, TREE, WATER, delete_aoi, seed_aoi

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "plugins"))
from eo_review.app import create_app  # noqa: E402

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
def tokens() -> dict[str, str]:
    """Bearer tokens from SimpleAuthManager: the all-admins "Anonymous" (local stack) and a named user."""
    from airflow.api_fastapi.app import init_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")
        manager = init_auth_manager()
        return {
            "anonymous": manager.generate_jwt(SimpleAuthManagerUser(username="Anonymous", role="ADMIN")),
            "ana": manager.generate_jwt(SimpleAuthManagerUser(username="ana", role="ADMIN")),
        }


@pytest.fixture
def client(store: tuple[Any, dict[str, Any]], tokens: dict[str, str]) -> TestClient:
    args = store[1]["args"]
    app = create_app(connect=lambda: psycopg2.connect(**args))
    return TestClient(app, headers={"Authorization": f"Bearer {tokens['anonymous']}"})


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
    png = client.get(maps[1]["image"])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    gdal.FileFromMemBuffer("/vsimem/test_review.png", png.content)
    try:
        ds = gdal.Open("/vsimem/test_review.png")
        values = np.unique(ds.GetRasterBand(1).ReadAsArray())
        assert ds.GetRasterBand(1).GetRasterColorTable() is not None
        assert {TREE, BARE, WATER} <= set(values.tolist())
    finally:
        gdal.Unlink("/vsimem/test_review.png")

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


def test_approve_records_the_review_and_rewrites_the_earlier_map(
    client: TestClient, store: tuple[Any, dict[str, Any]]
) -> None:
    conn, seeded = store
    response = client.post(
        f"/api/changes/{seeded['early']}/review", json={"action": "approve", "reviewer": "rita"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["maps_updated"] == [2021] and body["pixels_updated"] == 100
    assert body["change"]["status"] == "approved" and body["change"]["reviewed_by"] == "rita"
    status, by, at, new_class = _row(conn, seeded["early"])
    assert (status, by, new_class) == ("approved", "rita", None) and at is not None
    ds = gdal.Open(seeded["cogs"][2021])  # keep the dataset alive while its band is read (GDAL 3.6)
    classes = ds.GetRasterBand(1).ReadAsArray()
    assert (classes[5:15, 5:15] == BARE).all() and (classes[40:45, 40:60] == TREE).all()
    assert client.get(f"/api/aois/{AOI}/stats").json()["areas"]["2021"]["bare"] == pytest.approx(1.0)

    relabel = client.post(
        f"/api/changes/{seeded['late']}/review",
        json={"action": "relabel", "reviewer": "rita", "new_class": WATER},
    )
    assert relabel.status_code == 200, relabel.text
    assert _row(conn, seeded["late"])[0::3] == ("approved", WATER)
    reject = client.post(
        f"/api/changes/{seeded['early']}/review", json={"action": "reject", "reviewer": "rita"}
    )
    assert reject.status_code == 200 and reject.json()["maps_updated"] == [2021, 2022]
    assert _row(conn, seeded["early"])[0] == "rejected"


def test_a_logged_in_user_is_the_reviewer(
    client: TestClient, store: tuple[Any, dict[str, Any]], tokens: dict[str, str]
) -> None:
    conn, seeded = store
    response = client.post(
        f"/api/changes/{seeded['late']}/review",
        json={"action": "reject", "reviewer": "someone else"},
        headers={"Authorization": f"Bearer {tokens['ana']}"},
    )
    assert response.status_code == 200, response.text
    assert _row(conn, seeded["late"])[:2] == ("rejected", "ana")
    page = client.get(f"/aoi/{AOI}", headers={"Authorization": f"Bearer {tokens['ana']}"})
    assert 'value="ana" readonly' in page.text


def test_concurrent_reviews_of_one_map_both_land(
    client: TestClient, store: tuple[Any, dict[str, Any]]
) -> None:
    """The api-server answers requests on a thread pool: two reviews rewriting the 2022 map at once."""
    seeded = store[1]
    barrier = threading.Barrier(2)

    def reject(change_id: int) -> int:
        barrier.wait()
        url = f"/api/changes/{change_id}/review"
        return client.post(url, json={"action": "reject", "reviewer": "rita"}).status_code

    with ThreadPoolExecutor(2) as pool:
        assert list(pool.map(reject, (seeded["early"], seeded["late"]))) == [200, 200]
    ds = gdal.Open(seeded["cogs"][2022])
    assert not (ds.GetRasterBand(1).ReadAsArray() == BARE).any()  # both regions back to tree cover
    assert client.get(f"/api/aois/{AOI}/stats").json()["areas"]["2022"]["bare"] == 0


@pytest.mark.parametrize(
    ("method", "path", "body", "code"),
    [
        ("post", "/api/changes/999999999/review", {"action": "approve", "reviewer": "rita"}, 404),
        ("post", "/api/changes/{early}/review", {"action": "delete", "reviewer": "rita"}, 422),
        ("post", "/api/changes/{early}/review", {"action": "relabel", "reviewer": "rita"}, 422),
        (
            "post",
            "/api/changes/{early}/review",
            {"action": "relabel", "reviewer": "rita", "new_class": 42},
            422,
        ),
        ("post", "/api/changes/{early}/review", {"action": "approve", "reviewer": "  "}, 422),
        ("post", "/api/changes/{early}/review", {"action": "approve"}, 422),
        ("post", "/api/changes/not-a-number/review", {"action": "approve", "reviewer": "rita"}, 422),
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
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer not.a.jwt"}):
        response = client.post(
            f"/api/changes/{seeded['early']}/review",
            json={"action": "approve", "reviewer": "x"},
            headers=headers,
        )
        assert response.status_code == 401, response.text
        assert client.get("/api/aois", headers=headers).status_code == 401
    assert _row(conn, seeded["early"])[0] == "pending"


def test_an_unreachable_store_is_a_503(tokens: dict[str, str]) -> None:
    app = create_app(connect=lambda: psycopg2.connect(host="127.0.0.1", port=1, connect_timeout=2))
    client = TestClient(app, headers={"Authorization": f"Bearer {tokens['anonymous']}"})
    response = client.get("/api/aois")
    assert response.status_code == 503 and "unreachable" in response.json()["detail"]
