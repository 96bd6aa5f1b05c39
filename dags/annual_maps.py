"""Yearly land-cover map DAGs, one per AOI: sliding-window inference on the HPC, changes, maps in PostGIS.

One run per calendar year (the run's data interval), after the year ended plus a lag; past years
come as a catchup or a backfill, one year at a time in order, since year Y starts from the map of Y−1.
"""

from __future__ import annotations

import hashlib
import json
import logging
from contextlib import closing
from datetime import timedelta
from typing import Any

import pendulum
from airflow.providers.standard.sensors.date_time import DateTimeSensorAsync
from airflow.sdk import Asset, CronDataIntervalTimetable, PokeReturnValue, dag, task
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
   registered, a model exists (`model_{name}`) and, after the first year ({first}), the previous
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


def maps_asset(aoi_name: str) -> Asset:
    """Announces a new or replaced yearly map of an AOI (for the review UI and downstream users)."""
    return Asset(name=f"maps_{aoi_name}", uri=f"eo://maps/{aoi_name}", group="eo-maps")


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

            from eo_tasks.core.cube import cube_path
            from eo_tasks.core.settings import data_dir
            from eo_tasks.maps.outputs import MapPaths

            config = AOIConfig.load(aoi.source_file)
            year = logical_date.year  # the data interval's year: [Y-01-01, Y+1-01-01)
            years = [year - 1, year] if year > config.first_year else [year]
            catalog = scene_catalog()
            with closing(catalog.conn) as conn:
                fingerprints = [catalog.datacube_fingerprint(config.name, y) for y in years]
                model = catalog.latest_model(config.name)
                with conn.cursor() as cur:
                    cur.execute("SELECT 1 FROM lc_map WHERE aoi = %s AND year = %s", (config.name, year - 1))
                    has_previous = year == config.first_year or cur.fetchone() is not None
            missing = [f"cube {y}" for y, f in zip(years, fingerprints, strict=True) if f is None]
            missing += [] if model else [f"a model (run model_{config.name})"]
            missing += [] if has_previous else [f"the map of {year - 1} (backfill it first)"]
            if missing:
                log.info("%s %d waits for: %s", config.name, year, ", ".join(missing))
                return PokeReturnValue(is_done=False)
            assert model is not None
            run_key = hashlib.sha256(json.dumps([model[0], fingerprints]).encode()).hexdigest()[:12]
            hpc = config.hpc
            values = {
                "job_name": f"infer-{config.name}-{year}",
                "array_tasks": config.maps.array_tasks,
                "time_limit": hpc.time_limit,
                "partition": hpc.partition,
                "account": hpc.account,
                "gpus_per_node": hpc.gpus_per_node,
                "modules": list(hpc.modules),
                "venv": Connection.get(hpc.conn_id).extra_dejson["compute_venv"],
                "model_id": model[0],
                "model_dir": model[1],
                "cubes": [str(cube_path(data_dir(), config.name, y)) for y in years],
                "out_dir": str(MapPaths.for_year(data_dir(), config.name, year).labels / run_key),
                "block_px": config.maps.block_px,
                "window": config.maps.changes.window,
                "year": year,
            }
            log.info("%s %d: model %s, cubes %s", config.name, year, model[0], values["cubes"])
            return PokeReturnValue(is_done=True, xcom_value=values)

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
            import shutil
            import time
            from pathlib import Path

            import numpy as np

            from eo_tasks.core.cube import Cube
            from eo_tasks.core.settings import data_dir
            from eo_tasks.maps import annual_maps
            from eo_tasks.maps.infer import include_indices
            from eo_tasks.maps.outputs import MapPaths
            from eo_tasks.models import read_card

            config = AOIConfig.load(aoi.source_file)
            year, start = int(values["year"]), time.perf_counter()
            series = annual_maps.read_labels(Path(values["out_dir"]), config.grid, config.maps.block_px)
            cubes = [Cube.open(Path(p)) for p in values["cubes"]]
            card = read_card(Path(values["model_dir"]))
            with closing(store_connection()) as conn:
                if year == config.first_year:
                    result = annual_maps.first_year_map(series)
                else:
                    previous = annual_maps.previous_map(conn, config.name, year - 1)
                    result = annual_maps.next_year_map(series, previous, config.maps.changes)
                    scale = np.asarray(card["normalization"]["std"], dtype=np.float32)
                    indices = include_indices(card, cubes[0].band_names)
                    result = annual_maps.refine_dates(result, cubes, scale, indices, series.window)
                scenes = sorted({s for cube in cubes for s in json.loads(cube.attrs["scenes"])})
                provenance = {
                    "model_card": str(Path(values["model_dir"]) / "model_card.json"),
                    "cubes": values["cubes"],
                    "scenes": scenes,
                }
                stored = annual_maps.store_year(
                    conn,
                    config.name,
                    year,
                    config.grid,
                    result,
                    series.annual,
                    data_dir(),
                    values["model_id"],
                    provenance,
                )
            labels_root = MapPaths.for_year(data_dir(), config.name, year).labels
            for stale in labels_root.iterdir():  # earlier runs' labels (other model or cubes)
                if stale != Path(values["out_dir"]):
                    shutil.rmtree(stale, ignore_errors=True)
            log.info(
                "%s %d: %d changes (%d px) from job %s in %.1f s; class areas (ha): %s; map %s",
                config.name,
                year,
                stored.changes,
                stored.changed_pixels,
                job.get("job_id"),
                time.perf_counter() - start,
                {k: round(v, 1) for k, v in stored.class_areas_ha.items() if v},
                stored.map_path,
            )
            return stored.as_dict()

        wait >> values
        assemble(values, infer.output)  # type: ignore[arg-type]

    maps()


AOIS, _ = load_all(check_crs=False)
for _aoi in AOIS:
    build_maps_dag(_aoi)
