"""The training job as the orchestrator submits it: ``train.sbatch.j2``'s values from the AOI file.

Runs on the Airflow side (numpy and h5py only); the job itself runs :mod:`eo_tasks.training` on the HPC.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from eo_tasks.core.aoi import AOIConfig
from eo_tasks.core.errors import IncompleteOutputError
from eo_tasks.training.data import read_info


def train_job_values(
    config: AOIConfig, trainset: Path, models_dir: Path, run_id: str, venv: str
) -> dict[str, Any]:
    """The training job's template values.

    Args:
        config: The AOI.
        trainset: The AOI's multi-year training set.
        models_dir: Where the AOI's models go (one folder per run).
        run_id: The run's id (made safe for a folder name).
        venv: The compute environment on the cluster.

    Raises:
        IncompleteOutputError: The training set does not exist yet.
    """
    if not trainset.exists():
        raise IncompleteOutputError(f"{trainset}: run trainset_{config.name} first")
    spec = config.model
    extra_args = [
        a
        for name in ("layers", "hidden")
        if getattr(spec, name)
        for a in (f"--{name}", str(getattr(spec, name)))
    ]
    # Train on windows of the yearly maps' w composites, as the inference slides them: trained on
    # whole years only, the model flips on windows at unpredictable points (README, Measured).
    window = config.maps.changes.window
    if window < read_info(trainset).time_steps:
        extra_args += ["--window", str(window)]
    return {
        **config.hpc.job_values(venv),
        "job_name": f"train-{config.name}",
        "nodes": config.hpc.nodes,
        "tasks_per_node": config.hpc.tasks_per_node,
        "signal_seconds": 300,
        "trainset": str(trainset),
        "out_dir": str(models_dir / re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)),
        "backend": spec.backend,
        "architecture": spec.architecture,
        "epochs": spec.epochs,
        "batch_size": spec.batch_size,
        "master_port": 29500,
        "extra_args": extra_args,
    }
