"""Every test here runs against the real services."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def _connections(airflow_connections: None) -> None:
    """Hooks used outside a task find the platform's connections (see tests/conftest.py)."""
