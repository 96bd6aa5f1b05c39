"""Preprocess DAGs, one per AOI: ready scenes → one HDF5 datacube per year, on Dask.

Triggered by the AOI's scenes Asset (emitted by ``ingest_<aoi>``) and by hand for given years.
Only years whose scenes changed since their cube was built are rebuilt.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import Param, dag, task
from eo_assets import cube_asset, scenes_asset
from eo_common import failure_notifier, scene_catalog

from eo_tasks.core.aoi import AOIConfig, load_all

log = logging.getLogger(__name__)

DOC_MD = """
### Preprocess `{name}`

Turns the AOI's ready scenes into analysis-ready datacubes, one HDF5 file per year
(`$EO_DATA_DIR/cubes/{name}/{name}_<year>.h5`):

1. **plan** — the years whose ready scenes differ from those their cube was built from
   (plus the years in `params.years`).
2. **build_cube** — one mapped task per year, on a Dask cluster (local, or `EO_DASK_SCHEDULER`):
   SCL / QA_PIXEL masks, scale and offset, GDAL warping to the AOI grid, Landsat→Sentinel-2
   harmonization (HLS), {n} composites per year on a fixed calendar, gap filling; the cube is
   written atomically and registered in PostGIS (`datacube`). Scenes with a missing or corrupt
   band are skipped and listed in the task log and the cube.
3. **announce** — emits `{asset}` for the training and mapping DAGs.

Triggered by the Asset `{scenes}`. **Params:** `years` (list of years to rebuild even if unchanged).
"""


def build_preprocess_dag(aoi: AOIConfig) -> None:
    """Declares the preprocess DAG of one AOI."""
    asset = cube_asset(aoi.name)

    @dag(
        dag_id=f"preprocess_{aoi.name}",
        schedule=[scenes_asset(aoi.name)],
        start_date=pendulum.datetime(aoi.first_year, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        tags=["preprocess", f"aoi:{aoi.name}"],
        doc_md=DOC_MD.format(
            name=aoi.name, n=aoi.composites_per_year, asset=asset.name, scenes=scenes_asset(aoi.name).name
        ),
        default_args={
            "owner": "eo-platform",
            "retries": 1,
            "retry_delay": timedelta(minutes=2),
            "on_failure_callback": failure_notifier(),
        },
        params={"years": Param([], type="array", items={"type": "integer"}, description="years to rebuild")},
    )
    def preprocess() -> None:
        @task
        def plan(params: dict[str, Any] | None = None) -> list[int]:
            """Years to (re)build."""
            from eo_tasks.preprocess.datacube import years_to_build

            config = AOIConfig.load(aoi.source_file)
            years = years_to_build(scene_catalog(), config, forced=(params or {}).get("years", []))
            log.info("%s: years to build: %s", aoi.name, years or "none")
            return years

        @task(execution_timeout=timedelta(hours=6), map_index_template="{{ task.op_kwargs['year'] }}")
        def build_cube(year: int) -> dict[str, Any]:
            """Builds and registers the cube of one year."""
            from eo_tasks.core.settings import data_dir
            from eo_tasks.preprocess.cluster import dask_client
            from eo_tasks.preprocess.datacube import build_year

            config = AOIConfig.load(aoi.source_file)

            def progress(done: int, total: int, seconds: float) -> None:
                log.info(
                    "%s %d: %d/%d blocks (%.2f blocks/s)",
                    aoi.name,
                    year,
                    done,
                    total,
                    done / max(seconds, 1e-6),
                )

            with dask_client(spec=config.preprocess) as client:
                report = build_year(
                    scene_catalog(), config, year, data_dir(), client=client, progress=progress
                )
            for scene_id, reason in report.scenes_skipped.items():
                log.warning("skipped %s: %s", scene_id, reason)
            log.info(
                "%s %d: %d scenes -> %s in %.1fs; observed/filled pixels per composite: %s / %s",
                aoi.name,
                year,
                report.scenes_used,
                report.path,
                report.seconds,
                report.observed_pixels,
                report.filled_pixels,
            )
            return {"year": year, "path": report.path, "scenes": report.scenes_used}

        @task(outlets=[asset])
        def announce(built: list[dict[str, Any]]) -> list[str]:
            """Emits the AOI's cubes Asset (the run only gets here when every year built)."""
            return [b["path"] for b in built]

        announce(build_cube.expand(year=plan()))  # type: ignore[arg-type]

    preprocess()


AOIS, _ = load_all(check_crs=False)
for _aoi in AOIS:
    build_preprocess_dag(_aoi)
