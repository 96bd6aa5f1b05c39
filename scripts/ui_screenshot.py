"""A screenshot of a page of the local Airflow UI (Debian's Chromium driven by Playwright), for docs/.

Usage: ui_screenshot.py PATH OUT.png [--width 1600 --height 1000]   e.g. PATH = /dags/maps_demo
The local stack's UI needs no login (SimpleAuthManager, all admins, loopback only).
"""

from __future__ import annotations

import argparse
import os

from playwright.sync_api import sync_playwright


def main() -> None:
    """Takes the screenshot."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path")
    parser.add_argument("out")
    parser.add_argument("--width", type=int, default=1600)
    parser.add_argument("--height", type=int, default=1000)
    args = parser.parse_args()
    url = f"http://127.0.0.1:{os.environ.get('EO_AIRFLOW_PORT', '18080')}{args.path}"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=os.environ.get("EO_CHROMIUM", "/usr/bin/chromium"))
        page = browser.new_page(viewport={"width": args.width, "height": args.height})
        page.goto(url, wait_until="networkidle")
        page.wait_for_timeout(3000)  # the grid renders after its data arrives
        page.screenshot(path=args.out, full_page=False)
        browser.close()


if __name__ == "__main__":
    main()
