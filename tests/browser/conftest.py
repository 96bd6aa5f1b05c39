"""Fixtures of the browser tests: the running api-server (from services.sh), this checkout's review app
served with real logins, and Debian's Chromium."""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "plugins"))

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


HOSTILE_USER = "<img src=x onerror=window.__xss=1>"  # a user name that is HTML: must show as text
USERS = {"vera": "viewer", "ana": "admin", HOSTILE_USER: "admin"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def review_server(pg_schema: dict[str, Any], tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The review app of this checkout, served over HTTP under ``/eo-review`` with real logins.

    The shared api-server runs the main checkout's plugin; this serves the one under test, the way
    the api-server mounts it, against a private schema, with SimpleAuthManager users of different
    roles (``USERS``) who log in with passwords from a passwords file. Yields ``url``, ``args``
    (psycopg2 connect arguments), ``tokens`` (user → JWT for the UI's ``_token`` cookie).
    """
    import psycopg2
    import uvicorn
    from airflow.api_fastapi.app import init_auth_manager
    from airflow.api_fastapi.auth.managers.simple.datamodels.login import LoginBody
    from airflow.api_fastapi.auth.managers.simple.services.login import SimpleAuthManagerLogin
    from eo_review.app import create_app
    from fastapi import FastAPI

    args = {k: v for k, v in pg_schema.items() if k != "schema"}
    passwords = {name: f"pw-{i}-{uuid.uuid4().hex[:8]}" for i, name in enumerate(USERS)}
    (tmp_path / "passwords.json").write_text(json.dumps(passwords))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "False")
        mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", ",".join(f"{u}:{r}" for u, r in USERS.items()))
        mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(tmp_path / "passwords.json"))
        init_auth_manager()
        tokens = {
            u: SimpleAuthManagerLogin.create_token(LoginBody(username=u, password=p))
            for u, p in passwords.items()
        }
        parent = FastAPI()
        parent.mount(
            "/eo-review", create_app(connect=lambda: psycopg2.connect(**args), tile_root=tmp_path / "tiles")
        )
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(parent, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        for _ in range(100):
            if server.started:
                break
            time.sleep(0.1)
        assert server.started, "the review app did not start"
        try:
            yield {"url": f"http://127.0.0.1:{port}", "args": args, "tokens": tokens}
        finally:
            server.should_exit = True
            thread.join(timeout=10)
