"""docker-compose.yml can't be run here (no Docker engine): check that all it references exists."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
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


AIRFLOW_SERVICES = sorted(n for n in SERVICES if n.startswith("airflow-"))
SECRET_WORDS = re.compile(r"SECRET|PASSWORD|FERNET|TOKEN|_KEY\b", re.IGNORECASE)


def _started_after(name: str) -> set[str]:
    """The services ``name`` waits for, directly or through others."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        for dep, how in SERVICES[todo.pop()].get("depends_on", {}).items():
            assert how["condition"] in ("service_healthy", "service_completed_successfully")
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def test_no_secret_is_fixed_in_the_repository() -> None:
    """Issue 15.4: no "change-me" values; every secret is generated on first start and read from a file."""
    text = (REPO / "docker-compose.yml").read_text() + (REPO / ".env.example").read_text()
    assert "change-me" not in text.lower()
    assert not [k for k in _env_example() if SECRET_WORDS.search(k)], "secrets do not belong in .env"
    for name in AIRFLOW_SERVICES:
        env = SERVICES[name]["environment"]
        for option in (
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
            "AIRFLOW__API_AUTH__JWT_SECRET",
            "AIRFLOW__API__SECRET_KEY",
            "AIRFLOW__CORE__FERNET_KEY",
        ):
            assert option not in env, f"{name}: {option} must come from the generated secrets"
            assert env[f"{option}_CMD"].startswith("cat /run/eo-secrets/"), name
        assert "eo-secrets:/run/eo-secrets:ro" in SERVICES[name]["volumes"], name
        assert "secrets" in _started_after(name), f"{name} may start before the secrets exist"
    postgis = SERVICES["postgis"]
    assert postgis["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/eo-secrets/pg_password"
    assert "POSTGRES_PASSWORD" not in postgis["environment"]
    assert SERVICES["secrets"]["entrypoint"][-1] == "/opt/eo/docker/secrets/init-secrets.sh"


def test_the_secrets_are_generated_once_and_never_replaced(tmp_path: Path) -> None:
    from cryptography.fernet import Fernet

    env = {
        **os.environ,
        "EO_SECRETS_DIR": str(tmp_path / "s"),
        "EO_PG_USER": "eo",
        "EO_PG_AIRFLOW_DB": "airflow",
    }
    script = REPO / "docker" / "secrets" / "init-secrets.sh"
    first = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, check=True)
    assert first.stdout.count("generated") == 4
    files = {p.name: p.read_text().strip() for p in (tmp_path / "s").iterdir() if not p.name.startswith(".")}
    assert set(files) == {"pg_password", "jwt_secret", "api_secret_key", "fernet_key", "sql_alchemy_conn"}
    assert len(files["jwt_secret"]) >= 64 and len(set(files.values())) == 5
    Fernet(files["fernet_key"].encode())  # a valid Fernet key
    assert (
        files["sql_alchemy_conn"] == f"postgresql+psycopg2://eo:{files['pg_password']}@postgis:5432/airflow"
    )
    if os.geteuid() == 0:  # as in the container: the Airflow user and PostgreSQL may read, others not
        assert all(oct((tmp_path / "s" / n).stat().st_mode)[-3:] == "440" for n in files)
    again = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, check=True)
    assert "generated" not in again.stdout
    assert {n: (tmp_path / "s" / n).read_text().strip() for n in files} == files
    other = subprocess.run(
        ["bash", str(script)],
        env={**env, "EO_SECRETS_DIR": str(tmp_path / "t")},
        capture_output=True,
        check=True,
    )
    assert other.returncode == 0 and (tmp_path / "t" / "jwt_secret").read_text() != files["jwt_secret"] + "\n"


def test_the_ui_is_published_on_loopback_unless_told_otherwise() -> None:
    for name, service in SERVICES.items():
        for port in service.get("ports", []):
            assert str(port).startswith("${EO_UI_BIND:-127.0.0.1}:"), f"{name}: {port} binds every interface"
    assert SERVICES["airflow-apiserver"]["ports"]
    assert "EO_UI_BIND" in _env_example()


def test_the_images_find_aois_templates_and_the_hpc_login() -> None:
    """Issue 13.8: EO_AOI_DIR is the mounted AOI folder, templates are package data, the login is admitted."""
    common = SERVICES["airflow-scheduler"]
    aoi_dir = common["environment"]["EO_AOI_DIR"]
    assert f"./aois:{aoi_dir}:ro" in common["volumes"]
    dockerfile = (REPO / "docker" / "airflow" / "Dockerfile").read_text()
    assert "COPY eo_tasks /opt/eo/eo_tasks" in dockerfile and "hpc_templates" not in dockerfile
    assert re.search(r"pip install [^\n]*--no-deps /opt/eo\s*$", dockerfile, re.MULTILINE), "not editable"
    pyproject = (REPO / "pyproject.toml").read_text()
    assert '"eo_tasks.hpc" = ["templates/*.j2"]' in pyproject
    assert sorted((REPO / "eo_tasks" / "hpc" / "templates").glob("*.j2"))
    # sshd in the hpc container admits only the user it runs as (AllowUsers $(id -un)): root.
    assert "AllowUsers $(id -un)" in (REPO / "scripts" / "services.sh").read_text()
    assert not re.search(r"^USER ", (REPO / "docker" / "hpc" / "Dockerfile").read_text(), re.MULTILINE)
    assert SERVICES["airflow-init"]["environment"]["EO_HPC_USER"] == "root"
    init = (REPO / "docker" / "airflow" / "init.sh").read_text()
    assert 'c["eo_hpc"]["login"] = os.environ["EO_HPC_USER"]' in init
    assert "/run/eo-secrets/pg_password" in init
    # The client key on the shared volume must be readable by the airflow user (uid 50000).
    assert (
        'chown "${EO_AIRFLOW_UID:-50000}" "$EO_RUN_DIR/ssh/id_ed25519"'
        in (REPO / "docker" / "hpc" / "entrypoint.sh").read_text()
    )
