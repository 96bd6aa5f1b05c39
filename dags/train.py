"""Model DAGs, one per AOI: train the time-series classifier on the HPC and register it.

Triggered by the AOI's training-set Asset (emitted by ``trainset_<aoi>``) and by hand.
"""

from __future__ import annotations

import json
import logging
from contextlib import closing
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import dag, task
from eo_assets import model_asset, trainset_asset
from eo_common import store_connection
from eo_slurm import SlurmJobOperator

from eo_tasks.core.aoi import AOIConfig, load_all

log = logging.getLogger(__name__)

DOC_MD = """
### Model `{name}`

Trains the AOI's classifier ({backend} {architecture}, {epochs} epochs, on random crops of {window}
composites, the windows the yearly maps slide) on the HPC and registers it:

1. **job_values** — the job's settings: the multi-year training set
   (`$EO_DATA_DIR/training/{name}/trainset.h5`), a new model directory
   `$EO_DATA_DIR/models/{name}/<run>/`, and the AOI's `hpc` section (nodes, tasks and GPUs per node,
   partition, account, time limit, modules).
2. **train** — `eo_tasks/hpc/templates/train.sbatch.j2` submitted over SSH (`{conn}`) to SLURM, pool
   `hpc_submissions`; deferred while the job queues and runs (no worker slot held). TensorFlow jobs
   run Horovod with `horovodrun --gloo`, PyTorch jobs DistributedDataParallel with `srun`. Jobs that
   end TIMEOUT / PREEMPTED / NODE_FAIL or checkpointed before their time limit are resubmitted and
   resume from the newest checkpoint; killing the task cancels the job.
3. **register** — reads `model_card.json`, logs it, and records the model in PostGIS (`model`);
   emits `{asset}` for the yearly maps.

Triggered by the Asset `{trainset}`. No `params`: the AOI file says what to train.
"""


def build_model_dag(aoi: AOIConfig) -> None:
    """Declares the model DAG of one AOI."""
    asset = model_asset(aoi.name)

    @dag(
        dag_id=f"train_{aoi.name}",
        schedule=[trainset_asset(aoi.name)],
        start_date=pendulum.datetime(aoi.first_year, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        tags=["model", "hpc", f"aoi:{aoi.name}"],
        doc_md=DOC_MD.format(
            name=aoi.name,
            backend=aoi.model.backend,
            architecture=aoi.model.architecture,
            epochs=aoi.model.epochs,
            window=aoi.maps.changes.window,
            conn=aoi.hpc.conn_id,
            asset=asset.name,
            trainset=trainset_asset(aoi.name).name,
        ),
        default_args={"owner": "eo-platform", "retries": 1, "retry_delay": timedelta(minutes=1)},
    )
    def model() -> None:
        @task
        def job_values(run_id: str | None = None) -> dict[str, Any]:
            """The training job's template values (paths on the shared filesystem)."""
            from airflow.sdk import Connection

            from eo_tasks.core.settings import data_dir
            from eo_tasks.training.submit import train_job_values
            from eo_tasks.trainset.pipeline import TrainingPaths

            config = AOIConfig.load(aoi.source_file)
            venv = Connection.get(config.hpc.conn_id).extra_dejson["compute_venv"]
            trainset = TrainingPaths.for_aoi(data_dir(), aoi.name).trainset
            models = data_dir() / "models" / aoi.name
            return train_job_values(config, trainset, models, run_id or pendulum.now("UTC").isoformat(), venv)

        values = job_values()
        train = SlurmJobOperator(
            task_id="train",
            template="train.sbatch.j2",
            values=values,
            job_name=f"train-{aoi.name}",
            ssh_conn_id=aoi.hpc.conn_id,
            pool="hpc_submissions",
        )

        @task(outlets=[asset])
        def register(values: dict[str, Any], job: dict[str, Any]) -> str:
            """Records the trained model and its card in PostGIS; shows the card in the log."""
            from pathlib import Path

            from eo_tasks.store.connection import migrate
            from eo_tasks.store.scenes import SceneCatalog

            model_dir = Path(values["out_dir"])
            card = json.loads((model_dir / "model_card.json").read_text())
            log.info("model card of %s:\n%s", card["model_id"], json.dumps(card, indent=2))
            with closing(store_connection()) as conn:
                migrate(conn)
                SceneCatalog(conn).record_model(
                    card["model_id"], aoi.name, str(model_dir), card, job["job_id"]
                )
            return str(card["model_id"])

        register(values, train.output)  # type: ignore[arg-type]

    model()


AOIS, _ = load_all(check_crs=False)
for _aoi in AOIS:
    build_model_dag(_aoi)
