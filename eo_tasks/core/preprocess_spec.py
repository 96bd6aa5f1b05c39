"""The AOI file's ``preprocess`` section: where the cube-building Dask cluster runs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eo_tasks.core.errors import ConfigError
from eo_tasks.core.validate import check_known_keys

_MEMORY = re.compile(r"^[1-9][0-9]{0,5}(\.[0-9]+)?\s?(MB|GB|MiB|GiB)$")
_WALLTIME = re.compile(r"^([0-9]{1,3}-)?[0-9]{1,3}:[0-5][0-9]:[0-5][0-9]$")
_SLURM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # reaches #SBATCH lines: one plain word


@dataclass(frozen=True)
class PreprocessSpec:
    """Where the cube-building Dask cluster runs.

    Attributes:
        cluster: ``local`` (one worker process per core of the Airflow worker) or ``slurm``
            (dask-jobqueue's ``SLURMCluster``: each Dask worker is a batch job).
        workers: ``local``: worker processes (default: the machine's cores).
        jobs: ``slurm``: worker jobs.
        cores: ``slurm``: cores (single-threaded worker processes) per job.
        memory: ``slurm``: memory per job, e.g. ``8GB``.
        walltime: ``slurm``: time limit per job, ``[D-]HH:MM:SS``.
        partition: ``slurm``: partition (the cluster's default when absent).
        account: ``slurm``: account to charge (none when absent).
    """

    cluster: str = "local"
    workers: int | None = None
    jobs: int = 2
    cores: int = 1
    memory: str = "2GB"
    walltime: str = "02:00:00"
    partition: str | None = None
    account: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "preprocess") -> PreprocessSpec:
        """Validates and builds the section (values that would reach a job script unchecked are errors)."""
        check_known_keys(
            data, {"cluster", "workers", "jobs", "cores", "memory", "walltime", "partition", "account"}, where
        )
        try:
            spec = cls(
                cluster=str(data.get("cluster", "local")),
                workers=None if data.get("workers") is None else int(data["workers"]),
                jobs=int(data.get("jobs", 2)),
                cores=int(data.get("cores", 1)),
                memory=str(data.get("memory", "2GB")),
                walltime=str(data.get("walltime", "02:00:00")),
                partition=None if data.get("partition") is None else str(data["partition"]),
                account=None if data.get("account") is None else str(data["account"]),
            )
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{where}: {err}") from err
        checks = [
            (spec.cluster in ("local", "slurm"), f"cluster: {spec.cluster!r} is not 'local' or 'slurm'"),
            (
                spec.workers is None or 1 <= spec.workers <= 1024,
                f"workers: {spec.workers} is outside 1..1024",
            ),
            (1 <= spec.jobs <= 1000, f"jobs: {spec.jobs} is outside 1..1000"),
            (1 <= spec.cores <= 256, f"cores: {spec.cores} is outside 1..256"),
            (bool(_MEMORY.match(spec.memory)), f"memory: {spec.memory!r} is not like '8GB'"),
            (bool(_WALLTIME.match(spec.walltime)), f"walltime: {spec.walltime!r} is not [D-]HH:MM:SS"),
        ]
        for name in ("partition", "account"):
            value = getattr(spec, name)
            checks.append(
                (value is None or bool(_SLURM_NAME.match(value)), f"{name}: {value!r} is not a plain name")
            )
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"{where}.{message}")
        return spec
