"""The platform as its users run it: scheduler, DAG processor, triggerer and api-server, no `dags test`.

A small simulated AOI (64 x 64 px, 2020-2022) is dropped into the AOI folder the DAG processor
reads. Unpausing its DAGs schedules ingestion; the Assets start preprocessing, training sets and
model training (a SLURM job deferred in the triggerer); the new model waits in a human-in-the-loop
review and is approved through the REST API as a person would in the UI; the three years are made
by one `airflow backfill create`, then 2022 is remade by a second backfill. Every run is followed
through Airflow's REST API, as the UI shows it.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
import yaml

from tests.conftest import REPO
from tests.dags.conftest import scheduler_running

sys.path.insert(0, str(REPO / "scripts"))
from airflow_runs import AirflowAPI, follow_backfill, run_chain

USES_SCHEDULER = True  # tests/dags/conftest.py leaves the scheduler services running for this module
AOI = "e2esched"
YEARS = (2020, 2021, 2022)
TABLES = ("lc_change", "lc_map", "model", "training_set", "datacube", "scene_skip")
BACKFILL = [
    "backfill",
    "create",
    "--dag-id",
    f"maps_{AOI}",
    "--reprocess-behavior",
    "completed",
    "--max-active-runs",
    "1",
]


def _store(services: dict[str, str]) -> Any:
    password = (Path(services["EO_RUN_DIR"]) / "postgres.password").read_text().strip()
    return psycopg2.connect(
        host="127.0.0.1",
        port=int(services["EO_PG_PORT"]),
        user=services["EO_PG_USER"],
        password=password,
        dbname=services["EO_PG_DB"],
    )


def _query(services: dict[str, str], sql: str) -> list[tuple[Any, ...]]:
    with _store(services) as conn, conn.cursor() as cur:
        cur.execute(sql, {"aoi": AOI})
        return cur.fetchall()


def _forget_aoi(services: dict[str, str]) -> None:
    """Removes everything an earlier run of this test left: rows, files, the AOI file, its DAG runs."""
    for stage in ("ingest", "preprocess", "trainset", "train", "maps"):
        subprocess.run(  # its history in Airflow's metadata (absent on a fresh stack: nothing to delete)
            [str(REPO / ".venv" / "bin" / "airflow"), "dags", "delete", "-y", f"{stage}_{AOI}"],
            capture_output=True,
            check=False,
            timeout=300,
        )
    with _store(services) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('scene')")
        if cur.fetchone()[0] is None:  # a fresh store: nothing to forget
            return
        # Scene ids are scoped by source (this AOI's own archive), so these scenes are its own.
        cur.execute(
            "DELETE FROM scene WHERE id IN (SELECT scene_id FROM aoi_scene WHERE aoi = %(aoi)s)", {"aoi": AOI}
        )
        for table in TABLES:
            cur.execute(f"DELETE FROM {table} WHERE aoi = %(aoi)s", {"aoi": AOI})
    data = Path(services["EO_DATA_DIR"])
    for folder in ("scenes", "cubes", "training", "models", "maps", "archives"):
        shutil.rmtree(data / folder / AOI, ignore_errors=True)
    (Path(services["EO_AOI_DIR"]) / f"{AOI}.yaml").unlink(missing_ok=True)


def _airflow(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO / ".venv" / "bin" / "airflow"), *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def api(services: dict[str, str]) -> Iterator[AirflowAPI]:
    """The scheduler services up for this module (stopped again if this module started them)."""
    started = not scheduler_running()
    subprocess.run(["bash", str(REPO / "scripts" / "services.sh"), "up", "scheduler"], check=True)
    yield AirflowAPI(f"http://127.0.0.1:{services['EO_AIRFLOW_PORT']}")
    if started:
        subprocess.run(["bash", str(REPO / "scripts" / "services.sh"), "down", "scheduler"], check=True)


@pytest.fixture(scope="module")
def small_aoi(services: dict[str, str], api: AirflowAPI) -> Iterator[Path]:
    """A 64 x 64 px simulated AOI in the DAG processor's AOI folder; removed afterwards."""
    from eo_simulator import ScenarioConfig, simulate

    _forget_aoi(services)
    archive = Path(services["EO_DATA_DIR"]) / "archives" / AOI
    config = {"seed": 7, "width": 64, "height": 64, "years": list(YEARS), "s2_per_year": 8, "l8_per_year": 2}
    simulate(ScenarioConfig.from_dict(config), archive)
    aoi = yaml.safe_load((archive / "aoi.yaml").read_text())
    aoi.update(name=AOI, composites_per_year=12, last_year=YEARS[-1])
    aoi["model"] = {
        "backend": "pytorch",
        "architecture": "transformer",
        "epochs": 2,
        "batch_size": 64,
        "layers": 1,
        "hidden": 16,
    }  # auto_approve is off: the model waits for a person's approval
    aoi["hpc"] = {"time_limit": "00:15:00", "tasks_per_node": 1}
    aoi["maps"] = {  # regions dated in two processes spawned from the assemble task
        "window": 5,
        "median": 3,
        "ath": 4,
        "lag_days": 0,
        "block_px": 64,
        "array_tasks": 1,
        "dating_workers": 2,
    }
    aoi["trainset"] = {  # a 64 x 64 px AOI: small split blocks, few samples and trees
        "samples_per_year": 1500,
        "min_per_class": 20,
        "max_per_class": 400,
        "split_block_px": 16,
        "forest_trees": 20,
        "block_px": 32,
        "min_cluster_pixels": 20,
    }
    path = Path(services["EO_AOI_DIR"]) / f"{AOI}.yaml"
    path.write_text(yaml.safe_dump(aoi))
    yield path
    _forget_aoi(services)


def test_the_whole_chain_under_the_scheduler(
    services: dict[str, str], api: AirflowAPI, small_aoi: Path
) -> None:
    lines: list[str] = []
    started = time.monotonic()
    test_began = dt.datetime.now(dt.UTC)

    def say(line: str) -> None:
        lines.append(line)
        print(f"[{time.monotonic() - started:6.0f} s] {line}", flush=True)

    approvals: list[str] = []

    def approve(dag_id: str, run_id: str, ti: dict[str, Any]) -> None:
        time.sleep(10)  # a person reads the model card first (an instant answer can race the parking)
        approvals.append(ti["task_id"])
        api.respond(dag_id, run_id, ti["task_id"], "Approve")

    # 1. Ingest on its schedule; preprocess, training sets, training on Assets; a person approves.
    runs = run_chain(api, AOI, say, respond=approve)
    assert set(runs) == {"ingest", "preprocess", "trainset", "train"}
    assert approvals == ["review_model"]
    ((model_id, status, reviewer),) = _query(
        services, "SELECT id, status, reviewed_by FROM model WHERE aoi = %(aoi)s"
    )
    assert status == "approved" and reviewer and reviewer != "auto-approve (AOI setting)"
    assert _query(services, "SELECT count(*) FROM datacube WHERE aoi = %(aoi)s") == [(len(YEARS),)]

    # 2. Every year by the documented backfill, one after the other.
    since = dt.datetime.now(dt.UTC).isoformat()
    backfill_start = time.monotonic()
    _airflow(*BACKFILL, "--from-date", f"{YEARS[0]}-01-01", "--to-date", f"{YEARS[-1]}-01-01")
    made = follow_backfill(api, AOI, say, since)
    backfill_wall = time.monotonic() - backfill_start
    assert len(made) == len(YEARS)
    maps = _query(
        services, "SELECT year, cog_path, model_id, created_at FROM lc_map WHERE aoi = %(aoi)s ORDER BY year"
    )
    assert [m[0] for m in maps] == list(YEARS)
    assert all(Path(m[1]).is_file() for m in maps) and {m[2] for m in maps} == {model_id}
    changes = _query(services, "SELECT count(*) FROM lc_change WHERE aoi = %(aoi)s")[0][0]

    # Work vs. overhead of the backfill: the tasks' own run time against the wall time.
    work = 0.0
    for run_id in made:
        for ti in api.task_instances(f"maps_{AOI}", run_id):
            if ti.get("start_date") and ti.get("end_date") and ti["task_id"] != "wait_for_lag":
                work += (_t(ti["end_date"]) - _t(ti["start_date"])).total_seconds()
    say(f"backfill of {len(made)} years: {backfill_wall:.0f} s wall, {work:.0f} s in tasks")

    # 3. Remake 2022 by a second backfill: the same run is reprocessed, never a second one.
    since = dt.datetime.now(dt.UTC).isoformat()
    _airflow(*BACKFILL, "--from-date", f"{YEARS[-1]}-01-01", "--to-date", f"{YEARS[-1]}-01-01")
    follow_backfill(api, AOI, say, since)
    remade = _query(services, "SELECT year, created_at FROM lc_map WHERE aoi = %(aoi)s ORDER BY year")
    assert [r[1] for r in remade[:-1]] == [m[3] for m in maps[:-1]]  # the earlier years are kept
    assert remade[-1][1] > maps[-1][3]  # the last one is replaced
    assert _query(services, "SELECT count(*) FROM lc_change WHERE aoi = %(aoi)s")[0][0] == changes
    maps_runs = api.runs(f"maps_{AOI}")
    per_year = [r["logical_date"][:4] for r in maps_runs if r.get("logical_date")]
    assert sorted(per_year) == [str(y) for y in YEARS], f"one run per year, got {per_year}"

    # 4. The UI's API reports every run of the chain a success, and one Asset event per map made.
    for stage in ("ingest", "preprocess", "trainset", "train", "maps"):
        states = {
            r["state"] for r in api.runs(f"{stage}_{AOI}") if stage != "ingest" or r["state"] != "queued"
        }
        assert states == {"success"}, f"{stage}_{AOI}: {states}"
    assets = api.call("GET", f"/assets?name_pattern=maps_{AOI}")["assets"]
    events = api.call("GET", f"/assets/events?asset_id={assets[0]['id']}&limit=100")["asset_events"]
    events = [e for e in events if _t(e["timestamp"]) >= test_began]  # not a previous run's on this stack
    assert len(events) == len(YEARS) + 1  # every year, and the last one again
    assert any("maps_" in line and "assemble" in line and "success" in line for line in lines)


def _t(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
