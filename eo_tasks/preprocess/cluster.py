"""The Dask cluster preprocessing runs on.

A ``distributed.LocalCluster`` of one single-threaded worker process per core, unless
``EO_DASK_SCHEDULER`` names a running scheduler (``tcp://host:8786``), e.g. one started with
dask-jobqueue's ``SLURMCluster`` on the HPC when one machine is not enough.

Inside an Airflow 3 task the worker processes must not re-import the parent's ``__main__``: that
is the ``airflow`` entry point, whose import parses a database URL the task process is not given,
so every spawned worker died ("Nanny failed to start worker process"). :func:`detached_main` hides
the main module from ``multiprocessing``'s spawn while the cluster lives; the workers only import
this library, which never imports Airflow (import-linter checks it).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)


@contextmanager
def detached_main() -> Iterator[None]:
    """While active, processes spawned by ``multiprocessing`` do not re-run the parent's ``__main__``.

    ``multiprocessing.spawn`` re-imports the main module in each child when it has a file or a
    spec; without both, the child starts from a clean interpreter and unpickles what it is given.
    """
    main = sys.modules["__main__"]
    spec, file = getattr(main, "__spec__", None), getattr(main, "__file__", None)
    main.__spec__ = None
    if file is not None:
        del main.__file__
    try:
        yield
    finally:
        main.__spec__ = spec
        if file is not None:
            main.__file__ = file


@contextmanager
def dask_client(n_workers: int | None = None) -> Iterator[Any]:
    """Yields a ``distributed.Client``; a local cluster is shut down afterwards.

    Args:
        n_workers: Local worker threads (default: the machine's cores).
    """
    from distributed import Client, LocalCluster

    address = os.environ.get("EO_DASK_SCHEDULER")
    if address:
        log.info("using the Dask scheduler at %s", address)
        with Client(address) as client:
            yield client
        return
    workers = n_workers or os.cpu_count() or 1
    with (
        detached_main(),
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        log.info("started a local Dask cluster: %d threads", workers)
        yield client
