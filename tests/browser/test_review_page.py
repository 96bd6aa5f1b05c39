"""The review page in a real browser, served by the real api-server, reviewing a change in the real store.

A unique AOI is written into the PostGIS store the api-server reads (the ``eo_postgis`` connection)
and deleted afterwards. Chromium opens the page, the map and the change polygons appear, a click on
a polygon and on "Approve" records the review, and the row in PostGIS shows it. A screenshot is
kept in ``artifacts/review_page.png``.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.seed import delete_aoi, seed_aoi

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"
sys.path.insert(0, str(REPO / "plugins"))
MAP_DRAWN = (
    "() => { const i = document.querySelector('img.lc-map'); return i && i.complete && i.naturalWidth > 0; }"
)


@pytest.fixture
def seeded(services: dict[str, str], tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A fresh AOI with two maps and two pending changes in the store behind ``eo_postgis``."""
    from eo_review.db import connect_store  # the same connection the api-server uses

    conn = connect_store()
    aoi = f"browser-test-{uuid.uuid4().hex[:8]}"
    try:
        yield {"aoi": aoi, "conn": conn, **seed_aoi(conn, aoi, tmp_path)}
    finally:
        delete_aoi(conn, aoi)
        conn.close()


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


def test_approve_a_change_in_the_browser(api_server: str, chromium: Path, seeded: dict[str, Any]) -> None:
    from playwright.sync_api import expect, sync_playwright

    started = time.perf_counter()
    aoi, early = seeded["aoi"], seeded["early"]
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

            page.goto(f"{api_server}/eo-review/")
            expect(page.get_by_role("link", name=aoi)).to_be_visible()
            page.get_by_role("link", name=aoi).click()

            # The 2022 map is drawn, and both changes as polygons over it.
            page.wait_for_function(MAP_DRAWN)
            expect(page.locator("path.change-pending")).to_have_count(2)
            expect(page.locator("#message")).to_have_text("2 change(s) shown")
            expect(page.locator("#months")).to_be_visible()

            page.locator('input[name="reviewer"]').fill("browser-bot")
            page.locator(f"path.change-id-{early}").click()
            popup = page.locator(".change-popup")
            expect(popup).to_contain_text("2021-10-15")
            expect(popup).to_contain_text("tree_cover → bare")
            popup.get_by_role("button", name="Approve").click()
            expect(page.locator("#message")).to_contain_text(f"change {early} approved by browser-bot")
            expect(page.locator("path.change-pending")).to_have_count(1)  # the filter shows pending only

            page.locator('select[name="status"]').select_option("")  # all: the approved one in green
            expect(page.locator("path.change-approved")).to_have_count(1)
            page.wait_for_function(MAP_DRAWN)  # the 2022 map again, re-read after the review
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "review_page.png"), full_page=True)
        finally:
            browser.close()

    with seeded["conn"], seeded["conn"].cursor() as cur:
        cur.execute("SELECT status, reviewed_by, reviewed_at FROM lc_change WHERE id = %s", (early,))
        status, by, at = cur.fetchone()
        cur.execute("SELECT status FROM lc_change WHERE id = %s", (seeded["late"],))
        other = cur.fetchone()[0]
    assert (status, by, other) == ("approved", "browser-bot", "pending")
    assert dt.datetime.now(dt.UTC) - at < dt.timedelta(minutes=5)
    assert errors == []
    print(f"browser test: {time.perf_counter() - started:.1f} s")
