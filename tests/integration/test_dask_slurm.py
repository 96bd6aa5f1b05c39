"""Cube building on Dask workers that are SLURM jobs (dask-jobqueue's SLURMCluster) on the local slurmd."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import h5py
import numpy as np

from eo_tasks.core.preprocess_spec import PreprocessSpec
from eo_tasks.preprocess.cluster import dask_client
from eo_tasks.preprocess.datacube import build_cube
from tests.unit.test_datacube import _scenes, _spec, archive  # noqa: F401  (the module's fixture)


def test_two_slurm_worker_jobs_build_the_same_cube_as_one_process(archive: Path, tmp_path: Path) -> None:  # noqa: F811
    spec = PreprocessSpec.from_dict(
        {"cluster": "slurm", "jobs": 2, "cores": 1, "memory": "1GB", "walltime": "00:10:00"}
    )
    scenes = _scenes(archive)
    with dask_client(spec=spec) as client:
        jobs = client.run(lambda: os.environ.get("SLURM_JOB_ID"))
        assert len(jobs) == 2 and len(set(jobs.values())) == 2 and None not in jobs.values()
        queued = subprocess.run(
            ["squeue", "-h", "-o", "%i", "-j", ",".join(jobs.values())],
            capture_output=True,
            text=True,
            check=True,
        )
        assert sorted(queued.stdout.split()) == sorted(jobs.values())  # the workers are SLURM jobs
        report = build_cube(scenes, _spec(archive), tmp_path / "slurm.h5", client=client)
    assert report.blocks == 4
    build_cube(scenes, _spec(archive), tmp_path / "local.h5")
    with h5py.File(tmp_path / "slurm.h5") as a, h5py.File(tmp_path / "local.h5") as b:
        np.testing.assert_array_equal(a["reflectance"][:], b["reflectance"][:])
        np.testing.assert_array_equal(a["valid"][:], b["valid"][:])
