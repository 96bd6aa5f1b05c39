"""The package runs where it is installed, not only from the clone.

The wheel is built and installed into a fresh virtual environment (its dependencies come from the
orchestration venv's site-packages by a path entry; the repository is never on ``sys.path``). From
a folder outside the clone it then finds its package data (job templates, legends, migrations),
renders every job template, and Airflow parses copies of the DAG and plugin folders with an AOI
folder that is configuration, as a deployment would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from tests.conftest import REPO

CHECK = """
import os, sys
from pathlib import Path

import eo_tasks
assert Path(eo_tasks.__file__).resolve().is_relative_to(Path(sys.prefix).resolve()), eo_tasks.__file__
assert not any(p and Path(p).resolve() == Path(os.environ["EO_REPO_UNDER_TEST"]) for p in sys.path)

from eo_tasks.core.aoi_sections import HPCSpec
from eo_tasks.core.classes import Legend
from eo_tasks.hpc.slurm import TEMPLATES_DIR, render_job_script
from eo_tasks.store.connection import MIGRATIONS_DIR

assert sorted(p.name for p in MIGRATIONS_DIR.glob("*.sql"))[0] == "0001_scene_catalog.sql"
assert Legend.load("worldcover").name and Legend.load("corine").name
cluster = HPCSpec(partition="debug", modules=("cuda/12.2",)).job_values("/opt/eo/venv-compute")
values = {
    "probe.sbatch.j2": {"ntasks": 2, "time_limit": "00:05:00", "partition": "debug"},
    "train.sbatch.j2": {
        **cluster, "job_name": "train-x", "nodes": 1, "tasks_per_node": 2, "signal_seconds": 300,
        "trainset": "/data/training/x/trainset.h5", "out_dir": "/data/models/x/run", "backend": "tensorflow",
        "architecture": "transformer", "epochs": 2, "batch_size": 32, "master_port": 29500, "extra_args": [],
    },
    "infer.sbatch.j2": {
        **cluster, "job_name": "infer-x-2022", "array_tasks": 2, "model_id": "m",
        "model_dir": "/data/models/x/m", "cubes": ["/data/cubes/x/x_2021.h5", "/data/cubes/x/x_2022.h5"],
        "out_dir": "/data/maps/x/2022/labels/k", "block_px": 128, "window": 15, "year": 2022,
    },
}
templates = sorted(p.name for p in TEMPLATES_DIR.glob("*.j2"))
assert templates == sorted(values), templates
for name in templates:
    script = render_job_script(name, values[name])
    assert script.startswith("#!") and "#SBATCH" in script, name

from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
assert bag.import_errors == {}, bag.import_errors
print("DAGS", " ".join(sorted(bag.dags)))
"""


def test_the_installed_wheel_finds_its_data_renders_its_jobs_and_parses_its_dags(tmp_path: Path) -> None:
    python = REPO / ".venv" / "bin" / "python"
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(wheels),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("eo_platform-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    target = Path(
        subprocess.run(
            [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    # The dependencies (Airflow, GDAL, numpy, …) from the orchestration venv, after the wheel's own files.
    (target / "zz_dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"].replace(sys.prefix, str(REPO / ".venv"))
    )

    deployment = tmp_path / "deployment"  # what an operator lays out: DAGs, plugins, AOIs, data
    shutil.copytree(REPO / "dags", deployment / "dags")
    shutil.copytree(REPO / "plugins", deployment / "plugins", ignore=shutil.ignore_patterns("node_modules"))
    (deployment / "aois").mkdir()
    shutil.copy(REPO / "aois" / "demo.yaml", deployment / "aois" / "demo.yaml")
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "EO_REPO_UNDER_TEST": str(REPO.resolve()),
        "EO_AOI_DIR": str(deployment / "aois"),
        "EO_DATA_DIR": str(deployment / "data"),
        "AIRFLOW_HOME": str(deployment / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(deployment / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(deployment / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{deployment / 'airflow.db'}",
        "PYTHONPATH": f"{deployment / 'plugins'}:{deployment / 'dags'}",
    }
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-c", CHECK],
        cwd=deployment,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    dags = result.stdout.split("DAGS", 1)[1].split()
    for stage in ("ingest", "preprocess", "trainset", "train", "maps"):
        assert f"{stage}_demo" in dags
