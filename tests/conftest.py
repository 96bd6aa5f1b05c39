"""Shared fixtures: paths of the repo and the private services from scripts/services.sh."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="session")
def services() -> dict[str, str]:
    """The environment of the running service stack.

    Under `make test` (EO_REQUIRE_SERVICES=1) a missing service is a failure, never a skip.
    """
    needed = {"postgres": "EO_PG_PORT", "sshd": "EO_SSH_PORT", "slurmctld": "EO_SLURMCTLD_PORT"}
    missing = [
        name for name, var in needed.items() if var not in os.environ or not _port_open(int(os.environ[var]))
    ]
    if missing:
        message = f"services not running: {', '.join(missing)} (run `make services-up`)"
        if os.environ.get("EO_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return dict(os.environ)
