"""Smoke tests proving the service stack is real: PostGIS, sshd, SLURM and Horovod."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np
import psycopg2
import pytest
from airflow.providers.ssh.hooks.ssh import SSHHook

from eo_tasks.hpc.slurm import JobState, SlurmClient

ASSETS = Path(__file__).parent / "assets"


def test_postgis_answers_with_its_version(services: dict[str, str]) -> None:
    password = (Path(services["EO_RUN_DIR"]) / "postgres.password").read_text().strip()
    with (
        psycopg2.connect(
            host="127.0.0.1",
            port=services["EO_PG_PORT"],
            user=services["EO_PG_USER"],
            password=password,
            dbname=services["EO_PG_DB"],
        ) as conn,
        conn.cursor() as cur,
    ):
        # The central meridian of UTM zone 32N (9 degrees E) maps to easting 500 000 m: PROJ works.
        cur.execute(
            "SELECT postgis_full_version(), "
            "ST_AsText(ST_SnapToGrid(ST_Transform(ST_SetSRID(ST_MakePoint(9, 0), 4326), 32632), 1))"
        )
        version, point = cur.fetchone()
    assert version.startswith("POSTGIS=")
    assert point == "POINT(500000 0)"


def test_ssh_hook_runs_a_command_through_the_eo_hpc_connection() -> None:
    token = uuid.uuid4().hex
    hook = SSHHook(ssh_conn_id="eo_hpc")
    with hook.get_conn() as client:
        status, out, err = hook.exec_ssh_client_command(
            client, f"echo {token} $SLURM_CONF", get_pty=False, environment=None
        )
    assert status == 0, err
    assert out.decode().split()[0] == token
    assert out.decode().split()[1] == os.environ["SLURM_CONF"]


def test_ssh_hook_rejects_a_changed_host_key(monkeypatch: pytest.MonkeyPatch) -> None:
    hook = SSHHook(ssh_conn_id="eo_hpc")
    # Same key type, other key: the login node must not be trusted.
    hook.host_key = type(hook.host_key)(data=b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00 " + b"\x01" * 32)
    with pytest.raises(Exception, match=r"(?i)host key"):
        hook.get_conn()


def test_two_task_sbatch_job_over_ssh(slurm: SlurmClient) -> None:
    script = (
        "#!/bin/bash\n#SBATCH --ntasks=2\n#SBATCH --time=00:02:00\nsrun bash -c 'echo task=$SLURM_PROCID'\n"
    )
    job_id = slurm.submit(script, "two-tasks")
    assert slurm.wait(job_id, timeout=120, poll_interval=0.5) == JobState.COMPLETED
    assert sorted(slurm.output(job_id).split()) == ["task=0", "task=1"]


def test_failed_job_is_reported_failed(slurm: SlurmClient) -> None:
    job_id = slurm.submit("#!/bin/bash\necho about to fail\nexit 3\n", "fails")
    assert slurm.wait(job_id, timeout=120, poll_interval=0.5) == JobState.FAILED
    assert "about to fail" in slurm.output(job_id)


def test_horovod_gloo_job_inside_slurm_ends_with_identical_weights(
    slurm: SlurmClient, tmp_path: Path, services: dict[str, str]
) -> None:
    venv = services["EO_COMPUTE_VENV"]
    script = f"""#!/bin/bash
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=2
#SBATCH --time=00:10:00
source {venv}/bin/activate
horovodrun --gloo -np 2 -H localhost:2 python {ASSETS / "horovod_tiny_keras.py"} {tmp_path}
"""
    job_id = slurm.submit(script, "horovod-smoke")
    state = slurm.wait(job_id, timeout=600, poll_interval=1)
    assert state == JobState.COMPLETED, slurm.output(job_id)

    ranks = [np.load(tmp_path / f"rank{r}.npz") for r in (0, 1)]
    assert [int(r["size"]) for r in ranks] == [2, 2]
    n_weights = len([k for k in ranks[0].files if k.startswith("final_")])
    assert n_weights == 4  # two Dense layers: kernel + bias each
    # Different starting points (per-rank seeds) ...
    assert not np.array_equal(ranks[0]["initial_0"], ranks[1]["initial_0"])
    for i in range(n_weights):
        # ... identical end points, and training actually moved them.
        np.testing.assert_array_equal(ranks[0][f"final_{i}"], ranks[1][f"final_{i}"])
    assert not np.array_equal(ranks[0]["final_0"], ranks[0]["initial_0"])
    assert ranks[0]["loss"][-1] < ranks[0]["loss"][0]
