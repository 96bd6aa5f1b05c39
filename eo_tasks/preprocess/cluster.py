"""The Dask cluster preprocessing runs on.

A ``distributed.LocalCluster`` of one single-threaded worker process per core by default; with the
AOI's ``preprocess: {cluster: slurm, jobs, cores, memory, walltime}`` a dask-jobqueue
``SLURMCluster`` whose workers are batch jobs (the scheduler lives in the calling process, so the
compute nodes must reach it over TCP and ``sbatch`` must work where it runs); and whatever the
setting, ``EO_DASK_SCHEDULER`` names a running scheduler (``tcp://host:8786``) to use instead.

Inside an Airflow 3 task the worker processes must not re-import the parent's ``__main__``: that
is the ``airflow`` entry point, whose import parses a database URL the task process is not given,
so every spawned worker died ("Nanny failed to start worker process").
:func:`eo_tasks.core.processes.detached_main` hides the main module from ``multiprocessing``'s
spawn while the cluster lives.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from eo_tasks.core.errors import JobSubmissionError
from eo_tasks.core.preprocess_spec import PreprocessSpec
from eo_tasks.core.processes import detached_main

log = logging.getLogger(__name__)


SLURM_START_TIMEOUT_S = 600  # worker jobs that have not started by then: the queue is full or refuses them


@contextmanager
def dask_client(n_workers: int | None = None, spec: PreprocessSpec | None = None) -> Iterator[Any]:
    """Yields a ``distributed.Client``; a cluster started here is shut down afterwards.

    Args:
        n_workers: Local worker processes (default: ``spec.workers``, else the machine's cores).
        spec: The AOI's ``preprocess`` section (default: a local cluster).

    Raises:
        JobSubmissionError: SLURM worker jobs did not start within ``SLURM_START_TIMEOUT_S``.
    """
    from distributed import Client, LocalCluster

    spec = spec or PreprocessSpec()
    address = os.environ.get("EO_DASK_SCHEDULER")
    if address:
        log.info("using the Dask scheduler at %s", address)
        with Client(address) as client:
            yield client
        return
    if spec.cluster == "slurm":
        with _slurm_client(spec) as client:
            yield client
        return
    workers = n_workers or spec.workers or os.cpu_count() or 1
    with (
        detached_main(),
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        log.info("started a local Dask cluster: %d threads", workers)
        yield client


@contextmanager
def _slurm_client(spec: PreprocessSpec) -> Iterator[Any]:
    """A client of a ``SLURMCluster``: ``spec.jobs`` jobs of ``spec.cores`` worker processes each."""
    import tempfile

    from dask_jobqueue import SLURMCluster
    from distributed import Client

    with tempfile.TemporaryDirectory(prefix="eo-dask-slurm-") as scratch:
        cluster = SLURMCluster(
            cores=spec.cores,
            processes=spec.cores,  # single-threaded workers: GDAL handles are per thread
            memory=spec.memory,
            walltime=spec.walltime,
            queue=spec.partition,
            account=spec.account,
            python=sys.executable,
            local_directory=scratch,
            log_directory=scratch,
            scheduler_options={"dashboard_address": None},
            job_name="eo-dask-worker",
        )
        try:
            cluster.scale(jobs=spec.jobs)
            with Client(cluster) as client:
                try:
                    client.wait_for_workers(spec.jobs * spec.cores, timeout=SLURM_START_TIMEOUT_S)
                except TimeoutError as err:
                    raise JobSubmissionError(
                        f"{spec.jobs} SLURM worker job(s) did not start in {SLURM_START_TIMEOUT_S} s: "
                        f"check the partition ({spec.partition or 'default'}) and the queue"
                    ) from err
                log.info("SLURM Dask cluster: %d job(s) x %d worker(s)", spec.jobs, spec.cores)
                yield client
        finally:
            cluster.close()
