"""Fixtures of the browser tests: the running api-server (from services.sh) and Debian's Chromium."""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("EO_CHROMIUM", "/usr/bin/chromium"))


def _missing(message: str) -> None:
    if os.environ.get("EO_REQUIRE_SERVICES") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def api_server(services: dict[str, str]) -> str:
    """Base URL of the Airflow api-server that `services.sh up` started (health-checked)."""
    url = f"http://127.0.0.1:{services.get('EO_AIRFLOW_PORT', '18080')}"
    try:
        with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=10) as response:
            response.read()
    except OSError as exc:
        _missing(f"Airflow api-server not answering at {url} ({exc}): run `make services-up`")
    return url


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium (`apt-get install chromium`); Playwright's own browser downloads are not used."""
    if not os.access(CHROMIUM, os.X_OK):
        _missing(f"no Chromium at {CHROMIUM}: run `bash scripts/setup.sh apt`")
    return CHROMIUM
