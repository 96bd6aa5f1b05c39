"""The review page in a real browser, reviewing a change in the real store.

The running api-server shows that the plugin is registered, linked and framed by the Airflow UI.
The page itself is this checkout's app served over HTTP with SimpleAuthManager logins of different
roles (``review_server``), against a private schema: Chromium opens it, the map's tiles load at two
zoom levels, a click on a polygon and on "Approve" records the review under the logged-in user, a
Viewer gets no buttons and a 403, and an HTML user name stays text. A screenshot is kept in
``artifacts/review_page.png``.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from eo_tasks.store.connection import migrate
from tests.browser.conftest import HOSTILE_USER
from tests.browser.seed import delete_aoi, seed_aoi

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
# The tiles of the map layer at the current zoom: how many have loaded, how many show any pixel,
# and the zoom their URLs ask for. Tiles are same-origin, so a canvas may read them.
TILES = """() => {
  if (typeof map === 'undefined') return { zoom: null, loaded: 0, nonEmpty: 0 };
  const imgs = [...document.querySelectorAll('.lc-map img.leaflet-tile-loaded')]
    .filter((i) => i.complete && i.naturalWidth === 256 && i.src.includes(`/${map.getZoom()}/`));
  let nonEmpty = 0;
  for (const img of imgs) {
    const canvas = document.createElement('canvas');
    canvas.width = canvas.height = 256;
    const g = canvas.getContext('2d');
    g.drawImage(img, 0, 0);
    const data = g.getImageData(0, 0, 256, 256).data;
    for (let k = 3; k < data.length; k += 4) if (data[k] > 0) { nonEmpty += 1; break; }
  }
  return { zoom: map.getZoom(), loaded: imgs.length, nonEmpty };
}"""


def wait_for_tiles(page: Any) -> dict[str, int]:
    """Waits until the map layer shows at least one non-empty tile at the current zoom."""
    page.wait_for_function(f"({TILES})().nonEmpty > 0", timeout=30_000)
    return dict(page.evaluate(TILES))


@pytest.fixture
def seeded(review_server: dict[str, Any], tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A fresh AOI with two maps and two pending changes in the review server's private schema."""
    conn = psycopg2.connect(**review_server["args"])
    migrate(conn)
    aoi = f"browser-test-{uuid.uuid4().hex[:8]}"
    try:
        yield {"aoi": aoi, "conn": conn, **seed_aoi(conn, aoi, tmp_path / "data")}
    finally:
        delete_aoi(conn, aoi)
        conn.close()


def open_as(pw: Any, chromium: Path, server: dict[str, Any], user: str, errors: list[str]) -> tuple[Any, Any]:
    """A browser page logged in as ``user`` (the Airflow UI's ``_token`` cookie) collecting JS errors."""
    browser = pw.chromium.launch(executable_path=str(chromium), headless=True)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.add_cookies([{"name": "_token", "value": server["tokens"][user], "url": server["url"]}])
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(  # a failed load is reported below with its URL
        "console",
        lambda m: errors.append(m.text) if m.type == "error" and "Failed to load" not in m.text else None,
    )
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    return browser, page


def test_the_plugin_is_registered_with_a_nav_link(api_server: str) -> None:
    with urllib.request.urlopen(f"{api_server}/api/v2/plugins", timeout=10) as response:
        plugins = {p["name"]: p for p in json.load(response)["plugins"]}
    assert plugins["eo_review"]["fastapi_apps"][0]["url_prefix"] == "/eo-review"
    assert (
        plugins["eo_review"]["external_views"][0] | {"destination": "nav", "href": "/eo-review/"}
        == (plugins["eo_review"]["external_views"][0])
    )


def test_the_airflow_ui_links_and_frames_the_review_page(api_server: str, chromium: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"{api_server}/")
            page.get_by_role("button", name="Browse").click()
            page.get_by_role("menuitem", name="Change review").click()
            expect(page).to_have_url(f"{api_server}/plugin/eo-review")
            expect(page.frame_locator("iframe").locator("h1")).to_have_text("Areas of interest")
        finally:
            browser.close()


def test_approve_a_change_in_the_browser(
    review_server: dict[str, Any], chromium: Path, seeded: dict[str, Any]
) -> None:
    from playwright.sync_api import expect, sync_playwright

    started = time.perf_counter()
    aoi, early = seeded["aoi"], seeded["early"]
    errors: list[str] = []
    with sync_playwright() as pw:
        browser, page = open_as(pw, chromium, review_server, "ana", errors)
        try:
            page.goto(f"{review_server['url']}/eo-review/")
            expect(page.get_by_role("link", name=aoi)).to_be_visible()
            page.get_by_role("link", name=aoi).click()

            # The 2022 map is drawn from tiles, at the fitted zoom and zoomed out; both changes over it.
            fitted = wait_for_tiles(page)
            assert fitted["zoom"] >= 16, fitted  # 640 m fill the map: metre-sized screen pixels
            expect(page.locator("path.change-pending")).to_have_count(2)
            expect(page.locator("#message")).to_have_text("2 change(s) shown")
            expect(page.locator("#months")).to_be_visible()
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "review_page.png"), full_page=True)
            page.evaluate("map.setZoom(12, { animate: false })")
            zoomed_out = wait_for_tiles(page)
            assert zoomed_out["zoom"] == 12 and zoomed_out["nonEmpty"] >= 1, zoomed_out
            page.evaluate(f"map.setZoom({fitted['zoom']}, {{ animate: false }})")
            wait_for_tiles(page)

            page.locator(f"path.change-id-{early}").click()
            popup = page.locator(".change-popup")
            expect(popup).to_contain_text("2021-10-15")
            expect(popup).to_contain_text("tree_cover → bare")
            popup.get_by_role("button", name="Approve").click()
            expect(page.locator("#message")).to_contain_text(f"change {early} approved by ana")
            expect(page.locator("path.change-pending")).to_have_count(1)  # the filter shows pending only

            page.locator('select[name="status"]').select_option("")  # all: the approved one in green
            expect(page.locator("path.change-approved")).to_have_count(1)
            wait_for_tiles(page)  # the 2022 map again, new tiles after the review
        finally:
            browser.close()

    with seeded["conn"], seeded["conn"].cursor() as cur:
        cur.execute("SELECT status, reviewed_by, reviewed_at FROM lc_change WHERE id = %s", (early,))
        status, by, at = cur.fetchone()
        cur.execute("SELECT status FROM lc_change WHERE id = %s", (seeded["late"],))
        other = cur.fetchone()[0]
    assert (status, by, other) == ("approved", "ana", "pending")
    assert dt.datetime.now(dt.UTC) - at < dt.timedelta(minutes=5)
    assert errors == []
    print(f"browser test: {time.perf_counter() - started:.1f} s; tiles at zoom {fitted} and {zoomed_out}")


def test_an_html_user_name_is_shown_as_text(
    review_server: dict[str, Any], chromium: Path, seeded: dict[str, Any]
) -> None:
    """Fault suite (issue 15): a reviewer name that is HTML is recorded and shown, never run."""
    from playwright.sync_api import expect, sync_playwright

    aoi, early = seeded["aoi"], seeded["early"]
    errors: list[str] = []
    with sync_playwright() as pw:
        browser, page = open_as(pw, chromium, review_server, HOSTILE_USER, errors)
        try:
            page.goto(f"{review_server['url']}/eo-review/aoi/{aoi}")
            wait_for_tiles(page)
            expect(page.locator("header .who")).to_have_text(f"signed in as {HOSTILE_USER}")
            page.locator('select[name="status"]').select_option("")
            page.locator(f"path.change-id-{early}").click()
            page.locator(".change-popup").get_by_role("button", name="Approve").click()
            expect(page.locator("#message")).to_contain_text(f"approved by {HOSTILE_USER}")
            page.locator(f"path.change-id-{early}").click()
            # the pending popup may still be closing while the approved one opens: take the latter
            popup = page.locator(".change-popup", has_text="(approved)")
            expect(popup).to_contain_text(f"reviewed by {HOSTILE_USER}")
            assert popup.locator("img").count() == 0
            assert page.locator("img[src='x']").count() == 0
            assert page.evaluate("window.__xss") is None
        finally:
            browser.close()
    with seeded["conn"], seeded["conn"].cursor() as cur:
        cur.execute("SELECT reviewed_by FROM lc_change WHERE id = %s", (early,))
        assert cur.fetchone()[0] == HOSTILE_USER
    assert errors == []


def test_a_viewer_sees_no_review_buttons_and_is_refused(
    review_server: dict[str, Any], chromium: Path, seeded: dict[str, Any]
) -> None:
    """Fault suite (issue 15): a Viewer looks at the page; a review it sends anyway gets 403."""
    from playwright.sync_api import expect, sync_playwright

    aoi, early = seeded["aoi"], seeded["early"]
    errors: list[str] = []
    with sync_playwright() as pw:
        browser, page = open_as(pw, chromium, review_server, "vera", errors)
        try:
            page.goto(f"{review_server['url']}/eo-review/aoi/{aoi}")
            wait_for_tiles(page)
            expect(page.locator(".who-reviews")).to_contain_text("may look, not review")
            page.locator(f"path.change-id-{early}").click()
            expect(page.locator(".change-popup")).to_contain_text("2021-10-15")
            assert page.locator(".change-popup button").count() == 0
            status = page.evaluate(
                """async (id) => (await fetch(`${base}/api/changes/${id}/review`, {
                    method: "POST", headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
                    body: JSON.stringify({action: "approve"})})).status""",
                early,
            )
            assert status == 403
        finally:
            browser.close()
    with seeded["conn"], seeded["conn"].cursor() as cur:
        cur.execute("SELECT status, reviewed_by FROM lc_change WHERE id = %s", (early,))
        assert cur.fetchone() == ("pending", None)
    assert [e for e in errors if "403" not in e] == []
