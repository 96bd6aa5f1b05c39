"""Yearly land-cover map DAGs, one per AOI: sliding-window inference on the HPC, changes, maps in PostGIS.

One run per calendar year (the run's data interval), after the year ended plus a lag. Past years are
made, and remade, by ``airflow backfill create`` (the one way: catchup is off, so unpausing never
adds runs for past years beside a backfill); year Y starts as soon as the map of Y−1 is stored.
"""

from __future__ import annotations

import logging
from contextlib import closing
from datetime import timedelta
from typing import Any

import pendulum
from airflow.providers.standard.sensors.date_time import DateTimeSensorAsync
from airflow.sdk import CronDataIntervalTimetable, Param, dag, task
from eo_assets import maps_asset
from eo_common import failure_notifier, store_connection
from eo_slurm import SlurmJobOperator
from eo_waits import MapInputsSensor

from eo_tasks.core.aoi import AOIConfig, load_all

log = logging.getLogger(__name__)

BACKFILL = (
    "airflow backfill create --dag-id maps_{name} --from-date {first}-01-01 --to-date <last year>-01-01 "
    "--reprocess-behavior completed --max-active-runs 1"
)

DOC_MD = """
### Yearly maps `{name}`

Keeps the AOI's land-cover maps up to date, one calendar year per run (the run's data interval),
with the method of Sedona et al. (2023):

1. **wait_for_lag** — deferred until {lag} days after the year ended (late scenes still arrive).
2. **inputs** — deferred until the year's datacube(s) are registered, an **approved** model exists
   (`train_{name}`, then its review) and, after the first year ({first}), the previous year's map is
   stored; the triggerer looks every {poll} s, so a backfill's next year starts right after the
   previous one is stored. Decides the inference job's settings.
3. **infer** — `eo_tasks/hpc/templates/infer.sbatch.j2` on the HPC (`{conn}`, pool `hpc_submissions`):
   a SLURM job array of {tasks} tasks over {block}-pixel blocks; windows of {window} composites slide
   over the previous and this year's cubes. Resubmitted arrays skip finished blocks.
4. **assemble** — label-sequence analysis (median {median}, regions ≥ {ath} px), changes dated and
   embedded into the previous map; map and change COGs, PNG quicklooks, the STAC item
   (`$EO_DATA_DIR/maps/{name}/catalog.json`), then the year's `lc_map` / `lc_change` rows in one
   transaction (reviews survive a re-run). A failure leaves the previous map and rows in place.
   Emits `{asset}`.

**Params**: `model_id` (optional) — make the year with this approved model instead of the newest
approved one (each map row records its model, so a remade year can use the model it was made with).

**Past years, and remaking a year** (the one way; catchup is off, so there is never a second run
for a year): `{backfill}`. Years run one at a time, in order; remaking a year replaces it.
New changes are `pending`; review them in the **Change review** page (Airflow navigation).
"""


def build_maps_dag(aoi: AOIConfig) -> None:
    """Declares the yearly-map DAG of one AOI."""
    asset = maps_asset(aoi.name)
    params = aoi.maps.changes
    poll = 15

    @dag(
        dag_id=f"maps_{aoi.name}",
        # Data intervals, not Airflow 3's default trigger timetable: the run of logical date Y-01-01
        # covers [Y-01-01, Y+1-01-01) and starts once that year is over. Everything keys on the
        # logical date's year, so scheduled runs, backfills and `dags test maps_<aoi> Y-01-01` agree.
        schedule=CronDataIntervalTimetable("@yearly", timezone="UTC"),
        start_date=pendulum.datetime(aoi.first_year, 1, 1, tz="UTC"),
        end_date=None if aoi.last_year is None else pendulum.datetime(aoi.last_year, 12, 31, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        params={"model_id": Param(None, type=["null", "string"], description="an approved model's id")},
        tags=["maps", "hpc", f"aoi:{aoi.name}"],
        doc_md=DOC_MD.format(
            name=aoi.name,
            lag=aoi.maps.lag_days,
            first=aoi.first_year,
            poll=poll,
            conn=aoi.hpc.conn_id,
            tasks=aoi.maps.array_tasks,
            block=aoi.maps.block_px,
            window=params.window,
            median=params.median,
            ath=params.ath,
            asset=asset.name,
            backfill=BACKFILL.format(name=aoi.name, first=aoi.first_year),
        ),
        default_args={
            "owner": "eo-platform",
            "retries": 1,
            "retry_delay": timedelta(minutes=1),
            "depends_on_past": True,  # year Y starts from the map of Y-1
            "on_failure_callback": failure_notifier(),
        },
    )
    def maps() -> None:
        # The map of year Y (logical date Y-01-01, scheduled or backfilled) waits for Y's end plus the lag.
        wait = DateTimeSensorAsync(
            task_id="wait_for_lag",
            target_time="{{ logical_date.start_of('year').add(years=1, days="
            + str(aoi.maps.lag_days)
            + ").isoformat() }}",
        )
        inputs = MapInputsSensor(
            task_id="inputs", aoi_file=str(aoi.source_file), hpc_conn_id=aoi.hpc.conn_id, poll_interval=poll
        )
        infer = SlurmJobOperator(
            task_id="infer",
            template="infer.sbatch.j2",
            values=inputs.output,
            job_name=f"infer-{aoi.name}",
            ssh_conn_id=aoi.hpc.conn_id,
            pool="hpc_submissions",
        )

        @task(outlets=[asset])
        def assemble(values: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
            """The year's map and changes from the job's labels, written to files, STAC and PostGIS."""
            from eo_tasks.core.settings import data_dir
            from eo_tasks.maps.pipeline import assemble_year

            log.info("%s %s: labels of job %s", aoi.name, values["year"], job.get("job_id"))
            with closing(store_connection()) as conn:
                stored = assemble_year(conn, AOIConfig.load(aoi.source_file), values, data_dir())
            return stored.as_dict()

        wait >> inputs
        assemble(inputs.output, infer.output)

    maps()


AOIS, _ = load_all(check_crs=False)
for _aoi in AOIS:
    build_maps_dag(_aoi)
