"""Model DAGs, one per AOI: train the time-series classifier on the HPC, register it, have it reviewed.

Triggered by the AOI's training-set Asset (emitted by ``trainset_<aoi>``) and by hand.
"""

from __future__ import annotations

import json
import logging
from contextlib import closing
from datetime import timedelta
from typing import Any

import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import dag, task
from airflow.sdk.exceptions import AirflowSkipException
from eo_assets import model_asset, trainset_asset
from eo_common import failure_notifier, store_connection
from eo_slurm import SlurmJobOperator

from eo_tasks.core.aoi import AOIConfig, load_all

log = logging.getLogger(__name__)
APPROVE, REJECT = "Approve", "Reject"

DOC_MD = """
### Model `{name}`

Trains the AOI's classifier ({backend} {architecture}, {epochs} epochs, on random crops of {window}
composites, the windows the yearly maps slide) on the HPC, registers it, and has it reviewed:

1. **job_values** — the job's settings: the multi-year training set
   (`$EO_DATA_DIR/training/{name}/trainset.h5`), a new model directory
   `$EO_DATA_DIR/models/{name}/<run>/`, and the AOI's `hpc` section (nodes, tasks and GPUs per node,
   partition, account, time limit, modules).
2. **train** — `eo_tasks/hpc/templates/train.sbatch.j2` submitted over SSH (`{conn}`) to SLURM, pool
   `hpc_submissions`; deferred while the job queues and runs (no worker slot held), its epochs in the
   task log as they come. Jobs that end TIMEOUT / PREEMPTED / NODE_FAIL or checkpointed before their
   time limit are resubmitted and resume from the newest checkpoint; killing the task cancels the job.
3. **register** — records the model and its card in PostGIS (`model`, status `pending`).
4. **review_model** — a human-in-the-loop step (**Required actions** in the UI): the model card's
   validation and test metrics per class, *Approve* or *Reject*. {approval}
5. **decide** — records the decision; an approved model emits `{asset}` and becomes the model of the
   yearly maps (`maps_{name}`); a rejected one is never used.

Triggered by the Asset `{trainset}`. No `params`: the AOI file says what to train.
"""


def build_train_dag(aoi: AOIConfig) -> None:
    """Declares the training DAG of one AOI."""
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
            approval="This AOI sets `model.auto_approve: true`: the step is skipped and the model approved."
            if aoi.model.auto_approve
            else "The maps keep their current model until someone decides.",
        ),
        default_args={
            "owner": "eo-platform",
            "retries": 1,
            "retry_delay": timedelta(minutes=1),
            "on_failure_callback": failure_notifier(),
        },
    )
    def train_model() -> None:
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

        @task
        def register(values: dict[str, Any], job: dict[str, Any]) -> dict[str, str]:
            """Records the trained model (pending review) and its card in PostGIS."""
            from pathlib import Path

            from eo_tasks.models import read_card
            from eo_tasks.store.connection import migrate
            from eo_tasks.store.models import record_model
            from eo_tasks.training.model_card import review_summary

            model_dir = Path(values["out_dir"])
            card = read_card(model_dir)
            log.info("model card of %s:\n%s", card["model_id"], json.dumps(card, indent=2))
            with closing(store_connection()) as conn:
                migrate(conn)
                record_model(conn, card["model_id"], aoi.name, str(model_dir), card, job["job_id"])
            return {"model_id": str(card["model_id"]), "summary": review_summary(card)}

        @task.branch
        def review_needed() -> str:
            """Skips the human step when the AOI auto-approves its models."""
            return "auto_approve" if AOIConfig.load(aoi.source_file).model.auto_approve else "review_model"

        review_model = HITLOperator(
            task_id="review_model",
            subject=f"Use this new model for the yearly maps of {aoi.name}?",
            body="{{ ti.xcom_pull(task_ids='register')['summary'] }}",
            options=[APPROVE, REJECT],
            response_timeout=timedelta(days=14),
        )

        @task(outlets=[asset], trigger_rule="none_failed_min_one_success")
        def decide(model: dict[str, str], ti: Any = None) -> str:
            """Approves the model (auto or by the reviewer) or records its rejection."""
            from eo_tasks.store.models import set_model_status

            response = ti.xcom_pull(task_ids="review_model")
            if response is None:
                choice, by = APPROVE, "auto-approve (AOI setting)"
            else:
                choice, by = (
                    response["chosen_options"][0],
                    str(response.get("responded_by_user") or "reviewer"),
                )
            status = "approved" if choice == APPROVE else "rejected"
            with closing(store_connection()) as conn:
                set_model_status(conn, model["model_id"], status, by)
            log.info("model %s %s by %s", model["model_id"], status, by)
            if status != "approved":
                raise AirflowSkipException(
                    f"model {model['model_id']} rejected by {by}: the maps keep theirs"
                )
            return model["model_id"]

        model = register(values, train.output)  # type: ignore[arg-type]
        auto_approve = EmptyOperator(task_id="auto_approve")
        model >> review_needed() >> [review_model, auto_approve] >> decide(model)  # type: ignore[arg-type]

    train_model()


AOIS, _ = load_all(check_crs=False)
for _aoi in AOIS:
    build_train_dag(_aoi)
