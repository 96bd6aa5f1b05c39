"""The fault suite (issue 15): each test injects one fault into real runs and real services.

Every test asserts the same things: no row lost or duplicated, the files equal the rows (the map
COG, the ``CURRENT`` pointer and the STAC item all name the version ``lc_map`` points at, and its
pixels show what the reviews say), no orphan SLURM job, and a clear message naming the cause.

Faults go into the real, SHARED services; each one is short and undone in `finally`: a test that
stops one restarts it the way ``scripts/services.sh`` does, whatever happens.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from tests.faults import world
from tests.integration.conftest import _connections, slurm  # noqa: F401 (shared fixtures)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/faults/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


def _pid(pidfile: Path) -> int | None:
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def run_dir() -> Path:
    """The service stack's state folder (``$EO_RUN_DIR``)."""
    return Path(os.environ["EO_RUN_DIR"]).resolve()  # the real folder, not a worktree's link


def stop_daemon(pidfile: Path, sig: signal.Signals = signal.SIGTERM) -> None:
    """Stops the daemon of ``pidfile`` (as services.sh's stop_pidfile: signal, wait up to 10 s)."""
    pid = _pid(pidfile)
    if pid is None:
        return
    os.kill(pid, sig)
    for _ in range(50):
        if _pid(pidfile) is None or not Path(f"/proc/{pid}").exists():
            return
        time.sleep(0.2)


def start_sshd() -> None:
    """Starts sshd as ``services.sh up sshd`` does, unless it runs."""
    ssh = run_dir() / "ssh"
    if _pid(ssh / "sshd.pid") is None:
        subprocess.run(
            ["/usr/sbin/sshd", "-f", str(ssh / "sshd_config"), "-E", str(ssh / "sshd.log")], check=True
        )
    _wait(lambda: _pid(ssh / "sshd.pid") is not None, "sshd")


def start_slurmd() -> None:
    """Starts slurmd as ``services.sh up slurm`` does, unless it runs, and waits for the node."""
    if _pid(run_dir() / "slurm" / "slurmd.pid") is None:
        subprocess.run(["slurmd"], check=True)

    def node_ready() -> bool:
        node = subprocess.run(["hostname", "-s"], capture_output=True, text=True).stdout.strip()
        state = subprocess.run(["sinfo", "-h", "-n", node, "-o", "%T"], capture_output=True, text=True).stdout
        if state.startswith(("down", "drain")):
            subprocess.run(["scontrol", "update", f"nodename={node}", "state=resume"], capture_output=True)
        return state.strip().rstrip("*") in ("idle", "mixed", "allocated", "completing")

    _wait(node_ready, "slurm node")


def _wait(ready: object, what: str, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if ready():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not come back within {limit:.0f}s")


@pytest.fixture
def pg(pg_schema: dict[str, Any]) -> dict[str, Any]:
    """psycopg2 connect() arguments of a private, migrated schema."""
    import psycopg2

    from eo_tasks.store.connection import migrate

    args = {k: v for k, v in pg_schema.items() if k != "schema"}
    with closing(psycopg2.connect(**args)) as conn:
        migrate(conn)
    return args


@pytest.fixture
def connect(pg: dict[str, Any]) -> Iterator[Callable[[], Any]]:
    """Opens connections to the private schema (closed after the test)."""
    import psycopg2

    opened: list[Any] = []

    def open_one() -> Any:
        opened.append(psycopg2.connect(**pg))
        return opened[-1]

    yield open_one
    for conn in opened:
        conn.close()


@pytest.fixture
def root(tmp_path: Path, connect: Callable[[], Any]) -> Path:
    """The world on disk, its cubes and model registered."""
    world.build(tmp_path)
    world.register(connect(), tmp_path)
    return tmp_path


def rows(conn: Any, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """The result of a query, in a transaction of its own."""
    with conn, conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def snapshot(conn: Any, root: Path) -> dict[str, Any]:
    """Everything a year's outputs consist of: rows, files (by digest), STAC documents, pointers."""
    maps = world.AOI
    top = root / "data" / "maps" / maps
    files = {
        str(p.relative_to(top)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(top.rglob("*"))
        if p.is_file() and "labels" not in p.parts
    }
    return {
        "lc_map": rows(conn, "SELECT year, cog_path, class_areas_ha, created_at FROM lc_map ORDER BY year"),
        "lc_change": rows(
            conn,
            "SELECT id, year, from_class, to_class, new_class, status, reviewed_by, ST_AsText(geom) "
            "FROM lc_change ORDER BY id",
        ),
        "files": files,
    }


def check_consistent(conn: Any, root: Path, year: int) -> None:
    """The year's files equal its rows: one version, named by lc_map, CURRENT and STAC; pixels = reviews."""
    from eo_tasks.maps.outputs import MapPaths, class_areas
    from eo_tasks.maps.review import held_class, polygon_mask, read_class_map

    [(cog_path, areas)] = rows(
        conn, "SELECT cog_path, class_areas_ha FROM lc_map WHERE aoi = %s AND year = %s", world.AOI, year
    )
    current = MapPaths.for_year(root / "data", world.AOI, year)
    assert Path(cog_path) == current.classes and current.classes.is_file()
    versions = sorted(p.name for p in current.root.iterdir() if p.is_dir() and p.name.startswith("v"))
    assert versions == [current.version], f"orphaned or missing versions: {versions}"
    assert all(f.is_file() for f in current.files)
    item = json.loads(current.stac_item.read_text())
    assert (current.stac_item.parent / item["assets"]["map"]["href"]).resolve() == current.classes.resolve()
    catalog = json.loads((current.root.parent / "catalog.json").read_text())
    assert f"./{year}/{current.stac_item.name}" in [link["href"] for link in catalog["links"]]
    classes, grid = read_class_map(cog_path)
    assert class_areas(classes, grid.resolution) == pytest.approx(areas)
    changes = rows(
        conn,
        "SELECT id, year, ST_AsText(ST_Transform(geom, %s)), from_class, to_class, new_class, status, "
        "change_date FROM lc_change WHERE aoi = %s AND year >= %s",
        grid.epsg,
        world.AOI,
        year,
    )
    names = ("id", "year", "wkt", "from_class", "to_class", "new_class", "status", "change_date")
    geoms = [c[2] for c in changes if c[1] == year]
    assert len(geoms) == len(set(geoms)), "duplicated change rows"
    for change in (dict(zip(names, c, strict=True)) for c in changes):
        inside = polygon_mask(change["wkt"], grid)
        expected = held_class(change["status"], change, year)
        assert (classes[inside] == expected).all(), f"pixels of change {change} disagree with its status"
