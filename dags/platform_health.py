"""Platform health: the PostGIS store answers and the HPC runs a two-task SLURM job."""

from __future__ import annotations

import logging
from datetime import timedelta

import pendulum
from airflow.sdk import dag, task
from eo_common import failure_notifier

log = logging.getLogger(__name__)

DOC_MD = """
### Platform health

Checks, once a day, that the services every other DAG depends on answer and that the
configuration is valid:

1. **aoi_files** — validates every AOI file in `aois/` (`$EO_AOI_DIR`), including the grid's EPSG
   code; fails naming each bad file and field (bad files get no DAGs, so this is where they show).
2. **postgis_version** — `SELECT postgis_full_version()` through the `eo_postgis` connection.
3. **hpc_probe_job** — over the `eo_hpc` SSH connection, submits a two-task `sbatch` job to SLURM
   (pool `hpc_submissions`), waits for it and logs its output.

No `params`. A red run names the service that is down; see `make services-status`.
"""


@dag(
    dag_id="platform_health",
    schedule="@daily",
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["platform", "ops"],
    doc_md=DOC_MD,
    default_args={
        "owner": "eo-platform",
        "retries": 1,
        "retry_delay": timedelta(minutes=1),
        "on_failure_callback": failure_notifier(),
    },
)
def platform_health() -> None:
    """Wires the health checks."""

    @task
    def aoi_files() -> list[str]:
        """Returns the valid AOI names; fails listing every invalid AOI file."""
        from eo_tasks.core.aoi import load_all
        from eo_tasks.core.settings import aoi_dir

        valid, errors = load_all()
        for error in errors:
            log.error("%s", error)
        if errors:
            raise ValueError(
                f"{len(errors)} invalid AOI file(s) in {aoi_dir()}: " + "; ".join(map(str, errors))
            )
        log.info("AOIs: %s", ", ".join(a.name for a in valid) or "none")
        return [a.name for a in valid]

    @task
    def postgis_version() -> str:
        """Returns PostGIS's full version string."""
        from contextlib import closing

        from eo_common import store_connection

        from eo_tasks.store.connection import postgis_version as version_of

        with closing(store_connection()) as conn:
            version = version_of(conn)
        log.info("PostGIS: %s", version)
        return version

    @task(pool="hpc_submissions", execution_timeout=timedelta(minutes=10))
    def hpc_probe_job() -> str:
        """Runs a two-task SLURM job on the HPC and returns its output."""
        from airflow.providers.ssh.hooks.ssh import SSHHook

        from eo_tasks.hpc.slurm import ParamikoShell, SlurmClient, render_job_script

        hook = SSHHook(ssh_conn_id="eo_hpc")
        work_dir = hook.get_connection("eo_hpc").extra_dejson.get("remote_work_dir", "eo-platform")
        script = render_job_script(
            "probe.sbatch.j2", {"ntasks": 2, "time_limit": "00:05:00", "partition": ""}
        )
        with hook.get_conn() as client:
            slurm = SlurmClient(ParamikoShell(client), work_dir)
            output = slurm.run_to_completion(script, "health-probe", timeout=300)
        log.info("SLURM probe job output:\n%s", output)
        return output

    aoi_files()
    postgis_version()
    hpc_probe_job()


platform_health()
