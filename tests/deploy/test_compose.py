"""docker-compose.yml can't be run here (no Docker engine): check that all it references exists."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from tests.conftest import REPO

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
VARIABLE = re.compile(r"\$\{(\w+)(:?-[^}]*)?\}")


def _env_example() -> set[str]:
    lines = (REPO / ".env.example").read_text().splitlines()
    return {line.split("=", 1)[0] for line in lines if "=" in line and not line.startswith("#")}


def test_expected_services_are_defined() -> None:
    expected = {
        "postgis",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
    }
    assert expected <= SERVICES.keys()
    assert "hpc" in SERVICES


def test_every_variable_without_default_is_in_env_example() -> None:
    text = (REPO / "docker-compose.yml").read_text()
    required = {name for name, default in VARIABLE.findall(text) if not default}
    assert required, "compose file references no variables: parsing is broken"
    assert required <= _env_example(), f"missing from .env.example: {sorted(required - _env_example())}"


@pytest.mark.parametrize("name", sorted(n for n, s in SERVICES.items() if "build" in s))
def test_build_context_and_dockerfile_sources_exist(name: str) -> None:
    build = SERVICES[name]["build"]
    context = REPO / build["context"]
    dockerfile = context / build.get("dockerfile", "Dockerfile")
    assert dockerfile.is_file(), dockerfile
    for line in dockerfile.read_text().splitlines():
        if line.startswith(("COPY ", "ADD ")):
            sources = [part for part in line.split()[1:-1] if not part.startswith("--")]
            for source in sources:
                assert (context / source).exists(), f"{dockerfile.name}: {source} does not exist"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_bind_mounts_and_commands_exist(name: str) -> None:
    service = SERVICES[name]
    for volume in service.get("volumes", []):
        source = volume.split(":")[0]
        if source.startswith("./"):
            assert (REPO / source).exists(), f"{name}: bind mount {source} does not exist"
        else:
            assert source in COMPOSE.get("volumes", {}), f"{name}: named volume {source} is not declared"
    for part in service.get("command", []):
        if part.startswith("/opt/eo/"):
            assert (REPO / part.removeprefix("/opt/eo/")).exists(), f"{name}: {part} is not in the image"
    image = service.get("image", "")
    assert ":" in image and not image.endswith(":latest"), f"{name}: pin the image tag ({image!r})"
