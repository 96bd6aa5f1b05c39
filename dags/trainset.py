"""Training DAGs, one per AOI: reference map + datacubes → annual training sets and RF maps → multi-year set.

Triggered by the AOI's cubes Asset (emitted by ``preprocess_<aoi>``) and by hand. It ends by
announcing the set through the ``trainset_<aoi>`` Asset, which schedules ``train_<aoi>``.
"""

from __future__ import annotations

import logging
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import Param, dag, task
from eo_assets import cube_asset, trainset_asset
from eo_common import failure_notifier, store_connection

from eo_tasks.core.aoi import AOIConfig, load_all

log = logging.getLogger(__name__)

DOC_MD = """
### Training sets `{name}`

Derives training data from the AOI's reference map (`{reference}`, legend `{legend}`) and its
datacubes, with no hand labels (method: Sedona et al. 2022/2023). Outputs go to
`$EO_DATA_DIR/training/{name}/`.

1. **plan** — the years with a registered datacube (`datacube` table), within `params.years` if given;
   validates `params.trainset`.
2. **reference** — warps the reference map onto the AOI grid (nearest) and maps its codes to the
   platform classes (`reference.tif`); a code missing from the legend fails here, naming the file.
3. **annual** — one mapped task per year: per class, k-means on the year's NDVI/EVI/NDWI/NDSI/BSI time
   series keeps the dominant cluster; a stratified sample (class shares of the reference, per-class
   bounds) on spatially disjoint train/validation/test blocks (`annual_<year>.h5`); a random forest
   scored on the test blocks; the year's preliminary map (`rf_map_<year>.tif` + `.png` quicklook) and
   report (`annual_<year>.json`).
4. **multiyear** — pixels where every year's map agrees with the reference, sampled from every year:
   `trainset.h5` (the layout is documented in `eo_tasks.trainset`), `report.json`, a row in
   `training_set` (PostGIS).
5. **announce** — emits `{asset}` for model training.

Triggered by the Asset `{cubes}`, or by hand. **Params:** `years` (years to use; empty: every year
with a cube), `trainset` (overrides of `eo_tasks.trainset.TrainsetConfig`, on top of the AOI
file's own `trainset` section, e.g.
`{{"clusters": 6, "keep_cluster_share": 0.1, "samples_per_year": 30000, "min_per_class": 200,
"max_per_class": 5000, "split_block_px": 32, "forest_trees": 100}}`; `keep_cluster_share` 1.0, the
default, keeps only the dominant cluster as the published method does, which also drops genuine
sub-types of a class such as deciduous forest: see `benchmarks/results/trainset.json`).
"""


def build_training_dag(aoi: AOIConfig) -> None:
    """Declares the training DAG of one AOI."""
    asset = trainset_asset(aoi.name)

    @dag(
        dag_id=f"trainset_{aoi.name}",
        schedule=[cube_asset(aoi.name)],
        start_date=pendulum.datetime(aoi.first_year, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        tags=["training", f"aoi:{aoi.name}"],
        doc_md=DOC_MD.format(
            name=aoi.name,
            reference=aoi.reference.path,
            legend=aoi.reference.legend,
            asset=asset.name,
            cubes=cube_asset(aoi.name).name,
        ),
        default_args={
            "owner": "eo-platform",
            "retries": 1,
            "retry_delay": timedelta(minutes=2),
            "on_failure_callback": failure_notifier(),
        },
        params={
            "years": Param(
                [], type="array", items={"type": "integer"}, description="years to use (empty: all)"
            ),
            "trainset": Param({}, type="object", description="TrainsetConfig overrides"),
        },
    )
    def training() -> None:
        @task
        def plan(params: dict[str, Any] | None = None) -> list[int]:
            """Years with a registered cube (within ``params.years``); validates ``params.trainset``."""
            from eo_tasks.store.connection import migrate
            from eo_tasks.store.trainsets import registered_cubes
            from eo_tasks.trainset import TrainsetConfig

            params = params or {}
            config = AOIConfig.load(aoi.source_file)
            TrainsetConfig.for_aoi(config, params.get("trainset"))
            with closing(store_connection()) as conn:
                migrate(conn)
                cubes = registered_cubes(conn, aoi.name)
            wanted = set(params.get("years") or cubes)
            last = config.last_year or 9999
            years = [y for y in sorted(cubes) if y in wanted and config.first_year <= y <= last]
            log.info("%s: years with a cube: %s; using %s", aoi.name, sorted(cubes), years or "none")
            return years

        @task(execution_timeout=timedelta(hours=1))
        def reference() -> dict[str, int]:
            """The reference map on the AOI grid, in platform classes."""
            from eo_tasks.core.settings import data_dir
            from eo_tasks.trainset import TrainingPaths, prepare_reference

            config = AOIConfig.load(aoi.source_file)
            return prepare_reference(config, TrainingPaths.for_aoi(data_dir(), aoi.name))

        @task(execution_timeout=timedelta(hours=6), map_index_template="{{ task.op_kwargs['year'] }}")
        def annual(year: int, params: dict[str, Any] | None = None) -> dict[str, Any]:
            """The year's annual training set, random forest, preliminary map and report."""
            from eo_tasks.core.settings import data_dir
            from eo_tasks.store.trainsets import registered_cubes
            from eo_tasks.trainset import TrainingPaths, TrainsetConfig, build_annual

            config = AOIConfig.load(aoi.source_file)
            with closing(store_connection()) as conn:
                cube = registered_cubes(conn, aoi.name)[year]
            settings = TrainsetConfig.for_aoi(config, (params or {}).get("trainset"))
            result = build_annual(config, Path(cube), TrainingPaths.for_aoi(data_dir(), aoi.name), settings)
            return result.report

        @task(execution_timeout=timedelta(hours=6))
        def multiyear(
            annual_reports: list[dict[str, Any]], params: dict[str, Any] | None = None
        ) -> dict[str, Any]:
            """The multi-year training set from every year's unchanged pixels, registered in PostGIS."""
            from eo_tasks.core.settings import data_dir
            from eo_tasks.store.trainsets import record_training_set
            from eo_tasks.trainset import TrainingPaths, TrainsetConfig, build_multiyear

            config = AOIConfig.load(aoi.source_file)
            settings = TrainsetConfig.for_aoi(config, (params or {}).get("trainset"))
            by_year = {int(r["year"]): r for r in annual_reports}
            cubes = {year: Path(r["cube"]) for year, r in by_year.items()}
            report = build_multiyear(config, cubes, TrainingPaths.for_aoi(data_dir(), aoi.name), settings)
            with closing(store_connection()) as conn:
                row_id = record_training_set(conn, report, by_year)
            log.info("%s: training set %s registered as training_set.id=%d", aoi.name, report["path"], row_id)
            return {
                "id": row_id,
                "path": report["path"],
                "sha256": report["sha256"],
                "samples": report["samples"],
            }

        @task(outlets=[asset])
        def announce(trainset: dict[str, Any]) -> str:
            """Emits the AOI's training-set Asset (the run only gets here when every stage succeeded)."""
            return str(trainset["path"])

        # Model training on the HPC is train_<aoi>, scheduled on the trainset Asset that announce emits.
        annual_reports = annual.expand(year=plan())
        reference() >> annual_reports
        announce(multiyear(annual_reports))  # type: ignore[arg-type]

    training()


AOIS, _ = load_all(check_crs=False)
for _aoi in AOIS:
    build_training_dag(_aoi)
