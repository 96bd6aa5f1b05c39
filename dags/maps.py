"""Yearly land-cover map DAGs, one per AOI: sliding-window inference on the HPC, changes, maps in PostGIS.

One run per calendar year (the run's data interval), after the year ended plus a lag; past years
come as a catchup or a backfill, one year at a time in order, since year Y starts from the map of Y−1.
"""

from __future__ import annotations

import logging
from contextlib import closing
from datetime import timedelta
from typing import Any

import pendulum
from airflow.providers.standard.sensors.date_time import DateTimeSensorAsync
from airflow.sdk import CronDataIntervalTimetable, PokeReturnValue, dag, task
from eo_assets import maps_asset
from eo_common import scene_catalog, store_connection
from eo_slurm import SlurmJobOperator

from eo_tasks.core.aoi import AOIConfig, load_all

log = logging.getLogger(__name__)

DOC_MD = """
### Yearly maps `{name}`

Keeps the AOI's land-cover maps up to date, one calendar year per run (the run's data interval),
with the method of Sedona et al. (2023):

1. **wait_for_lag** — deferred until {lag} days after the year ended (late scenes still arrive).
2. **inputs** — waits (sensor, rescheduled hourly, up to a week) until the year's datacube is
   registered, a model exists (`train_{name}`) and, after the first year ({first}), the previous
   year's map is stored; decides the inference job's settings.
3. **infer** — `eo_tasks/hpc/templates/infer.sbatch.j2` on the HPC (`{conn}`, pool `hpc_submissions`): a SLURM
   job array of {tasks} tasks over {block}-pixel blocks; each block's windows of {window} composites slide
   over the previous and this year's cubes; labels per window go to
   `$EO_DATA_DIR/maps/{name}/<year>/labels/`. Resubmitted arrays skip finished blocks.
4. **assemble** — label-sequence analysis (median {median}, regions ≥ {ath} px), changes dated and
   embedded into the previous map; writes the map and change COGs, PNG quicklooks and the STAC item
   (`$EO_DATA_DIR/maps/{name}/catalog.json`), then replaces the year's `lc_map` / `lc_change` rows
   in one transaction (reviews of unchanged polygons survive a re-run). A failure anywhere leaves the
   previous map and rows in place. Emits `{asset}`.

New changes are `pending`; review them in the **Change review** page (Airflow navigation).
No `params`. Backfill past years with
`airflow backfill create --dag-id maps_{name} --from-date {first}-01-01 --to-date <last>-12-31`
(runs one year at a time; re-running a year replaces it).
"""


def build_maps_dag(aoi: AOIConfig) -> None:
    """Declares the yearly-map DAG of one AOI."""
    asset = maps_asset(aoi.name)
    params = aoi.maps.changes

    @dag(
        dag_id=f"maps_{aoi.name}",
        # Data intervals, not Airflow 3's default trigger timetable: the run of logical date Y-01-01
        # covers [Y-01-01, Y+1-01-01) and starts once that year is over. Everything keys on the
        # logical date's year, so `dags test maps_<aoi> Y-01-01` and backfills make the map of Y too.
        schedule=CronDataIntervalTimetable("@yearly", timezone="UTC"),
        start_date=pendulum.datetime(aoi.first_year, 1, 1, tz="UTC"),
        end_date=None if aoi.last_year is None else pendulum.datetime(aoi.last_year, 12, 31, tz="UTC"),
        catchup=True,
        max_active_runs=1,
        tags=["maps", "hpc", f"aoi:{aoi.name}"],
        doc_md=DOC_MD.format(
            name=aoi.name,
            lag=aoi.maps.lag_days,
            first=aoi.first_year,
            conn=aoi.hpc.conn_id,
            tasks=aoi.maps.array_tasks,
            block=aoi.maps.block_px,
            window=params.window,
            median=params.median,
            ath=params.ath,
            asset=asset.name,
        ),
        default_args={
            "owner": "eo-platform",
            "retries": 1,
            "retry_delay": timedelta(minutes=5),
            "depends_on_past": True,  # year Y starts from the map of Y-1
        },
    )
    def maps() -> None:
        # The map of year Y (logical date Y-01-01, scheduled or by hand) waits for Y's end plus the lag.
        lag = aoi.maps.lag_days
        wait = DateTimeSensorAsync(
            task_id="wait_for_lag",
            target_time="{{ logical_date.start_of('year').add(years=1, days=" + str(lag) + ").isoformat() }}",
        )

        @task.sensor(poke_interval=3600, timeout=7 * 86400, mode="reschedule")
        def inputs(logical_date: Any = None) -> PokeReturnValue:
            """The inference job's values once the year's cube(s), a model and the previous map exist."""
            from airflow.sdk import Connection

            from eo_tasks.core.settings import data_dir
            from eo_tasks.maps.pipeline import inference_inputs

            config = AOIConfig.load(aoi.source_file)
            venv = Connection.get(config.hpc.conn_id).extra_dejson["compute_venv"]
            catalog = scene_catalog()
            with closing(catalog.conn):
                found = inference_inputs(catalog, config, logical_date.year, data_dir(), venv)
            if found.values is None:
                log.info("%s %d waits for: %s", config.name, logical_date.year, ", ".join(found.missing))
                return PokeReturnValue(is_done=False)
            return PokeReturnValue(is_done=True, xcom_value=found.values)

        values = inputs()
        infer = SlurmJobOperator(
            task_id="infer",
            template="infer.sbatch.j2",
            values=values,
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

        wait >> values
        assemble(values, infer.output)  # type: ignore[arg-type]

    maps()


AOIS, _ = load_all(check_crs=False)
for _aoi in AOIS:
    build_maps_dag(_aoi)
